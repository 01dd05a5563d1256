"""One error body for every error status, sent by the handlers here and declared in the OpenAPI
schema for every route and status that can send it.

The body is ``{"detail": "<what was wrong and what to do>"}``; a 422 adds ``errors`` (each field
as written in the request, e.g. ``listeners[0].port``, where it was, and the message) when the
request failed validation. FastAPI's default schema promised a list
in ``detail`` (``HTTPValidationError``) while we sent a string, so every generated client and
schemathesis disagreed with every 422 we sent. :func:`declare_errors` now writes the schema from the
same rules the code follows:

- 401 on every route that takes a token (none, unknown, revoked or expired);
- 403 on those too (a caller of the wrong kind);
- 404 on every route with a path parameter or a body (what it names is missing, or another
  tenant's: fail closed);
- 409 on every write (a conflict, or a race lost several times);
- 400, 413 and 422 on every route with a request body (400: the bytes are not JSON text at all);
  422 also on every route with parameters;
- 412 where a route declares it itself (``If-Match``).
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from anycastlb.control.errors import ApiError
from anycastlb.model.base import Frozen
from anycastlb.model.validation_errors import without_echoes

__all__ = ["ErrorBody", "FieldError", "ValidationErrorBody", "declare_errors", "install_error_handlers"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REF = "#/components/schemas/"
_STARLETTE_PARSE_ERROR = "There was an error parsing the body"


class ErrorBody(Frozen):
    detail: str = Field(description="What was wrong and what to do about it")


class FieldError(Frozen):
    field: str = Field(description="The field as written in the request, e.g. listeners[0].port")
    part: str = Field(description="Where the field is: body, query, header or path")
    loc: tuple[str | int, ...] = Field(description="The same path as items, e.g. listeners, 0, port")
    msg: str


class ValidationErrorBody(ErrorBody):
    errors: tuple[FieldError, ...] = Field(
        default=(), description="Each field that failed validation (absent when the request was well formed)"
    )


_DESCRIPTIONS = {
    400: "The body is not JSON text (UTF-8)",
    401: "No token, or an unknown, revoked or expired one (the detail says which)",
    403: "The token is of the wrong kind for this route (e.g. a tenant on an admin route)",
    404: "Not found, or not yours",
    409: "Conflicts with the current state (the detail names what), or a concurrent change won",
    412: "If-Match named a version that is no longer current",
    413: "The request body is larger than the limit the detail names",
    422: "The request is invalid; the detail names each field and what to write instead",
}


def _path(loc: tuple[int | str, ...]) -> str:
    """``('listeners', 0, 'port')`` → ``listeners[0].port``: the field as the user wrote it."""
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else (("." if parts else "") + str(item)))
    return "".join(parts)


def _field_error(problem: Mapping[str, Any]) -> FieldError:
    """FastAPI's ``('body', 'listeners', 0, 'port')`` as ``listeners[0].port`` in the body; a
    header by its usual spelling (``If-Match``, which FastAPI lowercases)."""
    part, *rest = tuple(problem["loc"]) or ("body",)
    loc = tuple(rest)
    if part == "header" and loc:
        loc = ("-".join(word.capitalize() for word in str(loc[0]).split("-")), *loc[1:])
    msg = str(problem["msg"]).removeprefix("Value error, ")
    return FieldError(field=_path(loc), part=str(part), loc=loc, msg=msg)


def _line(error: FieldError) -> str:
    """``listeners[0].port: ...``, ``query parameter timeout: ...``, ``header If-Match: ...``."""
    if error.part == "body":
        where = error.field or "the request body"
    elif error.part == "header":
        where = f"header {error.field}"
    else:
        where = f"{error.part} parameter {error.field}"
    return f"{where}: {error.msg}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"detail": error.message}, status_code=error.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        """Starlette's own errors (unknown path, wrong method, unparsable body) in the same body."""
        detail = str(error.detail)
        if error.status_code == 400 and detail == _STARLETTE_PARSE_ERROR:
            detail = "the request body is not JSON text (UTF-8); send a JSON object as the schema shows"
        return JSONResponse({"detail": detail}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        """Each field by its path in the request (``listeners[0].port``), once."""
        problems = [_field_error(problem) for problem in without_echoes(error.errors())]
        body = ValidationErrorBody(detail="; ".join(_line(p) for p in problems), errors=tuple(problems))
        return JSONResponse(body.model_dump(mode="json"), status_code=422)


def _statuses(method: str, operation: dict[str, Any]) -> set[int]:
    parameters = operation.get("parameters", [])
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 403}
    if "requestBody" in operation or any(parameter.get("in") == "path" for parameter in parameters):
        statuses.add(404)
    if method.upper() in _WRITES:
        statuses.add(409)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if parameters:
        statuses.add(422)
    return statuses


def _error_schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (ErrorBody, ValidationErrorBody):
        schema = model.model_json_schema(ref_template=_REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _declare(schema: dict[str, Any]) -> dict[str, Any]:
    for path in schema.get("paths", {}).values():
        for method, operation in path.items():
            responses = operation.setdefault("responses", {})
            declared = {int(code) for code in responses if code.isdigit() and int(code) in _DESCRIPTIONS}
            for status in sorted(_statuses(method, operation) | declared):
                model = ValidationErrorBody if status == 422 else ErrorBody
                description = responses.get(str(status), {}).get("description") or _DESCRIPTIONS[status]
                responses[str(status)] = {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": _REF + model.__name__}}},
                }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, which we never send
        components.pop(unused, None)
    components.update(_error_schemas())
    return schema


def declare_errors(app: FastAPI) -> None:
    """Declare the error body in the app's OpenAPI schema on every operation for every status it
    can answer, replacing FastAPI's default 422 (``HTTPValidationError``). Works on the generated
    schema, not on FastAPI's route objects, whose internals change between releases."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _declare(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customize
