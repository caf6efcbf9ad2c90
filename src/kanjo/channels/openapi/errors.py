"""The open API's error answers, shaped as OAuth 2 errors (RFC 6749 §5.2, RFC 6750 §3): a machine-readable `error`,
an `error_description` for the provider's developers, and the headers the RFCs ask for.

Every refusal the channel gives a provider is an `ApiError`; `body()` and `headers` are what goes on the wire.
"""

from __future__ import annotations

import math
from typing import Any

REALM = "kanjo open API"


class ApiError(Exception):
    def __init__(self, status: int, error: str, description: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}
        self.extra = extra
        super().__init__(f"{error}: {description}")

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description, **self.extra}


def _quoted(text: str) -> str:
    """An RFC 7235 quoted-string of printable ASCII (descriptions are ASCII by RFC 6749 §5.2)."""
    safe = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "?" for ch in text)
    return f'"{safe}"'


# -- the token endpoint (RFC 6749 §5.2) -----------------------------------------------------------------------

def invalid_request(description: str, **extra: Any) -> ApiError:
    return ApiError(400, "invalid_request", description, **extra)


def invalid_client(description: str = "client authentication failed") -> ApiError:
    return ApiError(401, "invalid_client", description, headers={"WWW-Authenticate": f"Basic realm={_quoted(REALM)}"})


def invalid_scope(description: str) -> ApiError:
    return ApiError(400, "invalid_scope", description)


def unsupported_grant_type(grant_type: str) -> ApiError:
    return ApiError(400, "unsupported_grant_type",
                    f"grant_type {grant_type[:40]!r} is not supported: use client_credentials")


# -- protected resources (RFC 6750 §3) ------------------------------------------------------------------------

def missing_token() -> ApiError:
    """No credentials at all: the challenge carries no error code (RFC 6750 §3.1)."""
    return ApiError(401, "invalid_token", "this call needs an access token: Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": f"Bearer realm={_quoted(REALM)}"})


def invalid_token(description: str) -> ApiError:
    challenge = f'Bearer realm={_quoted(REALM)}, error="invalid_token", error_description={_quoted(description)}'
    return ApiError(401, "invalid_token", description, headers={"WWW-Authenticate": challenge})


def insufficient_scope(scope: str) -> ApiError:
    description = f"the access token does not carry the scope {scope!r}"
    challenge = (f'Bearer realm={_quoted(REALM)}, error="insufficient_scope", '
                 f'error_description={_quoted(description)}, scope={_quoted(scope)}')
    return ApiError(403, "insufficient_scope", description, headers={"WWW-Authenticate": challenge})


def consent_required(scope: str) -> ApiError:
    """The same answer whether the account does not exist, has no consent of this client, or its consent does not
    grant the scope, has expired or was revoked: nothing about the account is told."""
    return ApiError(403, "consent_required",
                    f"no active consent of the customer for this account grants {scope!r} to this client")


def rate_limited(retry_after_s: float) -> ApiError:
    seconds = max(1, math.ceil(retry_after_s))
    return ApiError(429, "rate_limited", f"this client's request rate is exceeded; retry in {seconds} s",
                    headers={"Retry-After": str(seconds)}, retry_after_s=seconds)


def quota_exceeded(quota: int, retry_after_s: int) -> ApiError:
    return ApiError(429, "quota_exceeded", f"this client's daily quota of {quota:,} calls is spent; it renews at"
                    " midnight JST", headers={"Retry-After": str(retry_after_s)}, retry_after_s=retry_after_s)


def unavailable(description: str, retry_after_s: float | None) -> ApiError:
    seconds = max(1, math.ceil(retry_after_s or 1))
    return ApiError(503, "temporarily_unavailable", description, headers={"Retry-After": str(seconds)},
                    retry_after_s=seconds)
