"""Errors the control plane's services raise; the API turns each into one HTTP status.

Services never import FastAPI: they raise these, and ``api/errors.py`` maps them. Messages say
what was wrong and what to do, and go to the client as ``{"detail": message}``.
"""

__all__ = ["ApiError", "Conflict", "Forbidden", "Invalid", "NotFound", "PreconditionFailed", "Unauthorized"]


class ApiError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(ApiError):  # noqa: N818 - named after the HTTP status it becomes
    status = 401


class Forbidden(ApiError):  # noqa: N818
    status = 403


class NotFound(ApiError):  # noqa: N818
    status = 404


class Conflict(ApiError):  # noqa: N818
    status = 409


class PreconditionFailed(ApiError):  # noqa: N818
    status = 412


class Invalid(ApiError):  # noqa: N818
    status = 422
