"""Where a store may connect, and what of the server's own identity it may send.

Link-local addresses are refused always: 169.254.0.0/16 and fe80::/10 (IPv4-mapped forms included), and AWS's
IPv6 instance metadata address fd00:ec2::254. Cloud metadata services answer there, and a store pointed at one
would make credflow's server fetch its own instance credentials. Two checks, one rule:

- when a store is registered, ``literal_link_local`` reads an address written as an IP literal (also the
  numeric forms ``2852039166`` and ``0xa9.0xfe.0xa9.0xfe`` that resolvers accept), with no DNS lookup;
- before a store connects, ``refuse_link_local`` resolves the host and refuses when any of its addresses is
  link-local, raising ``AddressRefused``. A host that does not resolve here is left to the SDK (it fails, or
  goes through the proxy the server is set up with). The SDK resolves the name again when it connects, so a
  DNS answer that changes between the two lookups is not caught: block 169.254.0.0/16 for credflow's process
  at the network too.

``AmbientCredentialsOff`` is what a store raises, before any call, when its config names no credentials and
would use the server's own identity without ``CREDFLOW_ALLOW_AMBIENT_CREDENTIALS``. ``without_netrc`` keeps a
``requests`` session from adding ``~/.netrc`` credentials of the server's user to a request, which ``requests``
does by default for any host the file names (or for every host, with ``default``).
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any
from urllib.parse import urlsplit

from credflow.stores.base import AccessDenied, StoreError

AWS_IPV6_METADATA = IPv6Address("fd00:ec2::254")
LINK_LOCAL_RANGES = "169.254.0.0/16, fe80::/10 or fd00:ec2::254"
NOT_CALLED = "not checked: credflow did not call the store"


class AddressRefused(StoreError):
    """The store's address is, or resolves to, a link-local address: credflow did not connect."""

    code = "store_address_refused"


class AmbientCredentialsOff(AccessDenied):
    """The store would use the server's own identity, which the operator has not allowed: credflow did not
    call it."""


def is_link_local(ip: IPv4Address | IPv6Address) -> bool:
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip == AWS_IPV6_METADATA


def host_of(address: str) -> str | None:
    """The host of a URL (``https://vault.example:8200``) or of a bare host (``login.chinacloudapi.cn``)."""
    text = address.strip()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:
        return None
    return (host or "").rstrip(".") or None


def _literal(host: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(host)
    except ValueError:
        pass
    try:
        return IPv4Address(socket.inet_aton(host))  # the forms resolvers read as IPv4: 2852039166, 0xa9.0xfe...
    except (OSError, UnicodeError, ValueError):
        return None


def literal_link_local(address: str) -> bool:
    """Whether ``address`` names a link-local IP literally (no DNS lookup)."""
    host = host_of(address)
    literal = _literal(host) if host else None
    return literal is not None and is_link_local(literal)


def refuse_link_local(address: str) -> None:
    """Raise ``AddressRefused`` when the host of ``address`` is, or resolves to, a link-local address."""
    host = host_of(address)
    if host is None:
        return
    literal = _literal(host)
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return
        found = [ip_address(str(info[4][0])) for info in infos]
    for ip in found:
        if is_link_local(ip):
            raise AddressRefused(f"credflow does not connect to the store's address: it resolves to {ip}, a "
                                 f"link-local address ({LINK_LOCAL_RANGES}) where cloud metadata services answer")


def _keep_as_is(request: Any) -> Any:
    return request


def without_netrc(session: Any) -> Any:
    """``session`` (a ``requests.Session``) with an auth that adds nothing, so that ``~/.netrc`` is not read."""
    session.auth = _keep_as_is
    return session
