// The OpenID provider of credflow's single sign-on tests: node's oidc-provider (OpenID Certified), one client,
// the device flow on, and a login page with a password per user. Started by tests/identity/op.py:
//   node server.js CONFIG.json   (prints "listening" when ready)
// CONFIG: {port, issuer, client: {client_id, client_secret, redirect_uris}, jwks: {keys: [private JWK]},
//          users: [{login, password, sub, email, email_verified, name, groups}], ttl?: {...}}
// One test hook, POST /test/next-id-token {id_token}: the next token response carries that ID token instead of
// the one the provider made (the tests sign it with the provider's own key, to play a token that expired, names
// another issuer, another audience or another nonce).
import http from 'node:http';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = new Map(cfg.users.map((u) => [u.sub, u]));
let nextIdToken = null;

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1>${body}</body></html>`;
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const provider = new Provider(cfg.issuer, {
  clients: [{
    client_id: cfg.client.client_id,
    client_secret: cfg.client.client_secret,
    client_name: 'credflow',
    redirect_uris: cfg.client.redirect_uris,
    grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: cfg.jwks,
  cookies: { keys: ['credflow-test-op-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
  conformIdTokenClaims: false, // the ID token carries email and groups (credflow reads no userinfo)
  findAccount: async (ctx, sub) => {
    const u = users.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, email: u.email, email_verified: u.email_verified, name: u.name, groups: u.groups }),
    };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, out, err) => {
        ctx.body = page('Enter the code', `${err ? '<p class="error">That code is not right</p>' : ''}${form}
          <button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = page('Confirm the device', `<p>Code <code>${esc(userCode)}</code> for ${esc(client.clientName)}</p>
          ${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
      },
      successSource: async (ctx) => { ctx.body = page('Signed in', '<p>You may close this window.</p>'); },
    },
  },
  ttl: cfg.ttl || {},
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.status === 200 && nextIdToken && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: nextIdToken };
    nextIdToken = null;
  }
});

const readBody = (req) => new Promise((resolve, reject) => {
  let data = '';
  req.on('data', (chunk) => { data += chunk; });
  req.on('end', () => resolve(data));
  req.on('error', reject);
});

function loginForm(uid, error) {
  return page('Sign in to the test provider', `${error ? `<p class="error">${esc(error)}</p>` : ''}
    <form method="post" action="/interaction/${uid}/login">
      <label>Login <input name="login" autocomplete="username"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password"></label>
      <button type="submit">Sign in</button>
    </form>`);
}

async function interaction(req, res, uid, isLogin) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST' && isLogin) {
      const form = new URLSearchParams(await readBody(req));
      const user = cfg.users.find((u) => u.login === form.get('login') && u.password === form.get('password'));
      if (!user) {
        res.writeHead(200, { 'content-type': 'text/html' }).end(loginForm(uid, 'Wrong login or password'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' }).end(loginForm(uid));
    return;
  }
  // consent: the first-party client gets what it asked for
  const grant = details.grantId ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
http.createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, cfg.issuer);
    if (pathname === '/test/next-id-token' && req.method === 'POST') {
      nextIdToken = JSON.parse(await readBody(req)).id_token;
      res.writeHead(204).end();
      return;
    }
    const m = pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (m) {
      await interaction(req, res, m[1], Boolean(m[2]));
      return;
    }
    callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err && err.stack || err));
  }
}).listen(cfg.port, '127.0.0.1', () => { console.log('listening'); });
