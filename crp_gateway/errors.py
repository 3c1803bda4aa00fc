"""The gateway's errors, each rendered in the OpenAI error envelope.

Every error a client can see is a :class:`GatewayError` carrying its HTTP status,
the OpenAI ``type`` and a stable ``code``; one handler in ``app.py`` renders
``{"error": {"type", "code", "message"}}``. The tree::

    GatewayError
    ├── InvalidRequest          400 invalid_request_error
    ├── AuthenticationFailed    401 authentication_error
    ├── PermissionDenied        403 permission_error
    ├── NotFound                404 not_found_error
    ├── Conflict                409 conflict_error
    ├── PayloadTooLarge         413 invalid_request_error
    ├── RateLimited             429 rate_limit_error (carries Retry-After)
    ├── ProviderMisconfigured   424 provider_error (a stored credential is unusable)
    ├── ProviderAuthFailed      424 provider_error (the provider refused the key)
    ├── ProviderFailed          502 provider_error / provider_unreachable
    └── ProviderTimeout         504 provider_error

Upstream answers are mapped in ``providers/errors.py``: a provider's 400 stays a
400 with its (scrubbed) message, 401/403 become 424 (the caller's gateway key is
fine, and SDKs do not retry 4xx), 429 stays 429 with the provider's
``Retry-After``, 5xx become 502, timeouts 504.

Messages are written for the caller and never contain a secret: not a provider
key, not a gateway key, not ``SECRET_KEY``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base class: an error with an HTTP status and an OpenAI-shaped body."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.error_type,
            "code": self.code,
            "message": self.message,
        }
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    default_code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class PermissionDenied(GatewayError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class NotFound(GatewayError):
    status_code = 404
    error_type = "not_found_error"
    default_code = "not_found"


class Conflict(GatewayError):
    status_code = 409
    error_type = "conflict_error"
    default_code = "conflict"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class ProviderMisconfigured(GatewayError):
    status_code = 424
    error_type = "provider_error"
    default_code = "provider_misconfigured"


class ProviderAuthFailed(GatewayError):
    status_code = 424
    error_type = "provider_error"
    default_code = "provider_auth_failed"


class ProviderFailed(GatewayError):
    status_code = 502
    error_type = "provider_error"
    default_code = "provider_error"


class ProviderTimeout(GatewayError):
    status_code = 504
    error_type = "provider_error"
    default_code = "provider_timeout"


class RateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, retry_after: int | None, code: str | None = None
    ) -> None:
        headers = (
            {} if retry_after is None else {"Retry-After": str(max(retry_after, 1))}
        )
        super().__init__(message, code=code, headers=headers)
        self.retry_after = retry_after


#: How framework-level HTTP statuses are reported when no GatewayError was raised.
HTTP_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """The OpenAI envelope for a bare HTTP status raised by the framework."""
    error_type, code = HTTP_STATUS_ERRORS.get(status, ("api_error", "http_error"))
    return {"error": {"type": error_type, "code": code, "message": message}}
