"""API errors as kube-apiserver reports them: a ``Status`` object with a reason and an HTTP code."""

from typing import Any

from tests.support.kube_api.resources import ResourceKind

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiStatusError(Exception):
    """A failed request; :meth:`status` is the body the API server answers with."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind: ResourceKind, name: str) -> ApiStatusError:
    details = {"name": name, "group": kind.group, "kind": kind.plural}
    return ApiStatusError(404, f'{kind.resource} "{name}" not found', details=details)


def already_exists(kind: ResourceKind, name: str) -> ApiStatusError:
    details = {"name": name, "group": kind.group, "kind": kind.plural}
    return ApiStatusError(409, f'{kind.resource} "{name}" already exists', "AlreadyExists", details)


def conflict(kind: ResourceKind, name: str) -> ApiStatusError:
    message = (
        f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiStatusError(409, message, details={"name": name, "group": kind.group, "kind": kind.plural})


def invalid(kind: ResourceKind, name: str, field: str, problem: str) -> ApiStatusError:
    """422 as validation answers: ``Service "web" is invalid: spec.ports[0].nodePort: Invalid value: …``."""
    details = {
        "name": name,
        "group": kind.group,
        "kind": kind.kind,
        "causes": [{"field": field, "message": problem}],
    }
    return ApiStatusError(422, f'{kind.kind} "{name}" is invalid: {field}: {problem}', details=details)


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, message)


def expired(requested: int, oldest: int) -> ApiStatusError:
    return ApiStatusError(410, f"too old resource version: {requested} ({oldest})")


def injected(code: int) -> ApiStatusError:
    return ApiStatusError(code, f"injected failure ({code}) by the stand-in's fail_next")
