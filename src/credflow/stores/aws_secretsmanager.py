"""AWS Secrets Manager as a secret store.

A secret's name is its secret id or ARN. Versions are Secrets Manager's VersionIds; the latest is the
version labelled ``AWSCURRENT``, which ``current_version`` finds through DescribeSecret (no value read); a
secret scheduled for deletion is not found there, as GetSecretValue refuses it.
``NAME#FIELD`` picks a field of a JSON SecretString; a plain ``NAME`` returns the whole SecretString.

Without ``access_key_id``/``secret_access_key`` boto3's default chain is used (instance or task role,
environment, ``~/.aws``): the server's own identity, so only when the operator sets
``CREDFLOW_ALLOW_AMBIENT_CREDENTIALS``. Without it such a store is refused when registered, and one saved before
is denied before any call. An ``endpoint_url`` that is or resolves to a link-local address is refused
(``credflow.stores.egress``).

The SDK does not retry: credflow decides, using ``Throttled.retry_after``. Secrets Manager sends no
``Retry-After``, so a throttled read suggests ``DEFAULT_RETRY_AFTER_SECONDS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from pydantic import SecretStr, model_validator

from credflow.stores.base import (
    DEFAULT_RETRY_AFTER_SECONDS,
    AccessDenied,
    CheckResult,
    PollingConfig,
    SecretNotFound,
    SecretValue,
    StoreConfig,
    StoreContext,
    StoreError,
    StoreUnavailable,
    Throttled,
    pick_field,
    retry_after_seconds,
    secret,
    split_field,
    utc,
)
from credflow.stores.egress import NOT_CALLED, AddressRefused, AmbientCredentialsOff, refuse_link_local

try:
    import boto3
    import botocore.exceptions
    from botocore.config import Config as BotoConfig
except ImportError:  # without the aws extra the kind is listed as not viable, with the command that adds it
    _MISSING_EXTRA: str | None = "aws"
else:
    _MISSING_EXTRA = None

T = TypeVar("T")
CURRENT = "AWSCURRENT"

_NOT_FOUND = {"ResourceNotFoundException"}
_DENIED = {
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "DecryptionFailure",  # credflow may not use the KMS key the secret is encrypted with
}
_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}
_UNAVAILABLE = {"InternalServiceError", "InternalFailure", "ServiceUnavailable"}


class AwsSecretsManagerConfig(PollingConfig):
    region: str
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None

    @model_validator(mode="after")
    def _keys_come_in_pairs(self) -> AwsSecretsManagerConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self

    def addresses(self) -> dict[str, str]:
        return {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}

    def ambient_identity(self) -> str | None:
        if self.access_key_id is not None:
            return None
        return ("AWS's default credential chain (the host's instance or task role, environment or ~/.aws), as it "
                "has no access_key_id and secret_access_key")


class AwsSecretsManagerStore:
    def __init__(self, config: AwsSecretsManagerConfig, *, allow_ambient_credentials: bool = False) -> None:
        self._config = config
        self._allow_ambient = allow_ambient_credentials

    def read(self, name: str, version: str | None = None) -> SecretValue:
        secret_id, field = split_field(name)
        which = {"VersionStage": CURRENT} if version is None else {"VersionId": version}
        response = self._call(
            f"read {secret_id!r}", lambda c: c.get_secret_value(SecretId=secret_id, **which)
        )
        raw = response.get("SecretString")
        if raw is None:
            raise SecretNotFound(f"{secret_id!r} holds binary data; credflow reads only SecretString")
        return SecretValue(pick_field(raw, field, whole_when_plain=True), response["VersionId"],
                           created_at=utc(response.get("CreatedDate")), expires_at=self._next_rotation(secret_id))

    def _next_rotation(self, secret_id: str) -> datetime | None:
        """When Secrets Manager will rotate the secret next (DescribeSecret's NextRotationDate): the current
        version's end. None without rotation, or when DescribeSecret is refused (the value was read all the same)."""
        try:
            described = self._call(f"describe {secret_id!r}", lambda c: c.describe_secret(SecretId=secret_id))
        except StoreError:
            return None
        return utc(described.get("NextRotationDate"))

    def current_version(self, name: str) -> str:
        secret_id, _ = split_field(name)
        response = self._call(f"describe {secret_id!r}", lambda c: c.describe_secret(SecretId=secret_id))
        if response.get("DeletedDate"):  # scheduled for deletion: GetSecretValue refuses it already
            raise SecretNotFound(f"{secret_id!r} is marked for deletion")
        stages: dict[str, list[str]] = response.get("VersionIdsToStages") or {}
        for version_id, labels in stages.items():
            if CURRENT in labels:
                return version_id
        raise SecretNotFound(f"{secret_id!r} has no version labelled {CURRENT}")

    def checks(self) -> list[CheckResult]:
        """One ListSecrets call answers both checks: any AWS answer proves the endpoint is reachable."""
        where = self._config.endpoint_url or f"Secrets Manager in {self._config.region}"
        fix = (
            "give credflow valid credentials whose policy allows secretsmanager:GetSecretValue, "
            "DescribeSecret and (for this check) ListSecrets, plus kms:Decrypt on the secrets' keys"
        )
        try:
            self._call("list secrets", lambda c: c.list_secrets(MaxResults=1))
        except AddressRefused as exc:
            return [CheckResult("reachable", False, str(exc)), CheckResult("service_can_read", False, NOT_CALLED)]
        except AmbientCredentialsOff as exc:
            return [CheckResult("reachable", False, NOT_CALLED), CheckResult("service_can_read", False, str(exc))]
        except StoreUnavailable:
            return [
                CheckResult("reachable", False, f"cannot reach {where}: check the region, endpoint_url and "
                            "that credflow's host can reach AWS (proxy, firewall, VPC endpoint)"),
                CheckResult("service_can_read", False, "cannot check while the store is unreachable"),
            ]
        except AccessDenied:
            return [
                CheckResult("reachable", True, f"{where} answered"),
                CheckResult("service_can_read", False, f"AWS refused credflow's credentials: {fix}"),
            ]
        except StoreError as exc:
            return [
                CheckResult("reachable", True, f"{where} answered"),
                CheckResult("service_can_read", False, f"could not check the credentials ({exc}); try again"),
            ]
        return [
            CheckResult("reachable", True, f"{where} answered"),
            CheckResult("service_can_read", True, "AWS accepted credflow's credentials"),
        ]

    @cached_property
    def _client(self) -> Any:
        if self._config.access_key_id is None and not self._allow_ambient:
            raise AmbientCredentialsOff(
                "this store has no access_key_id and secret_access_key, and credflow lends its own AWS identity "
                "(the default credential chain) only when the operator sets CREDFLOW_ALLOW_AMBIENT_CREDENTIALS: "
                "give the store access keys"
            )
        # A session of its own: boto3's default session is not safe to share between threads.
        session = boto3.session.Session()
        return session.client(
            "secretsmanager",
            region_name=self._config.region,
            endpoint_url=self._config.endpoint_url,
            aws_access_key_id=self._config.access_key_id,
            aws_secret_access_key=secret(self._config.secret_access_key),
            config=BotoConfig(
                retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=10
            ),
        )

    def _call(self, what: str, call: Callable[[Any], T]) -> T:
        if self._config.endpoint_url:
            refuse_link_local(self._config.endpoint_url)
        with _translated(what):
            return call(self._client)


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise _from_client_error(exc, what) from None
    except botocore.exceptions.ParamValidationError:
        raise SecretNotFound(f"AWS cannot {what}: not a valid secret id or version id") from None
    except botocore.exceptions.NoCredentialsError:
        raise AccessDenied(
            f"credflow has no AWS credentials to {what}: set access_key_id and secret_access_key, or run "
            "credflow with an instance or task role and CREDFLOW_ALLOW_AMBIENT_CREDENTIALS"
        ) from None
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
        raise StoreUnavailable(f"AWS is unreachable; could not {what} ({type(exc).__name__})") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise StoreError(f"the AWS SDK failed to {what} ({type(exc).__name__})") from None


def _from_client_error(exc: botocore.exceptions.ClientError, what: str) -> StoreError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    meta = exc.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    if code in _NOT_FOUND:
        return SecretNotFound(f"AWS has nothing to {what} (no such secret or version)")
    if code in _DENIED or status in (401, 403):
        return AccessDenied(f"AWS refused to let credflow {what} ({code or status})")
    if code in _THROTTLED or status == 429:
        retry_after = retry_after_seconds((meta.get("HTTPHeaders") or {}).get("retry-after"))
        return Throttled(
            f"AWS is throttling credflow; could not {what}",
            retry_after=DEFAULT_RETRY_AFTER_SECONDS if retry_after is None else retry_after,
        )
    if code in _UNAVAILABLE or status >= 500:
        return StoreUnavailable(f"AWS is unavailable; could not {what} ({code or status})")
    if code == "InvalidRequestException":
        return SecretNotFound(f"AWS cannot {what} now (a secret marked for deletion cannot be read)")
    return StoreError(f"AWS failed to {what} ({code or status})")


class AwsSecretsManagerPlugin:
    kind: ClassVar[str] = "aws-secretsmanager"
    Config: ClassVar[type[StoreConfig]] = AwsSecretsManagerConfig
    missing_extra: ClassVar[str | None] = _MISSING_EXTRA

    @classmethod
    def open(cls, config: StoreConfig, context: StoreContext) -> AwsSecretsManagerStore:
        if not isinstance(config, AwsSecretsManagerConfig):
            raise TypeError(f"expected AwsSecretsManagerConfig, got {type(config).__name__}")
        return AwsSecretsManagerStore(config, allow_ambient_credentials=context.allow_ambient_credentials)
