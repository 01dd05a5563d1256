"""The status page's HTTP shell: sign-in and sign-out, four pages and their JSON twins.

Pages are rendered on the server (Jinja2, every value escaped); each page's ``main`` names its
JSON twin, which ``status.js`` polls every ``REFRESH_SECONDS`` to replace the page's content
without a reload. What a viewer may see is decided in :mod:`views`; this module only reads the
store, authenticates the cookie and writes responses with a strict Content-Security-Policy.
"""

from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from anycastlb.control.api.deps import principal_of
from anycastlb.control.api.runtime import Runtime
from anycastlb.control.errors import Unauthorized
from anycastlb.control.principal import Principal
from anycastlb.control.status_page.sign_in import (
    COOKIE_PATH,
    CSRF_COOKIE,
    SESSION_COOKIE,
    cookie_token,
    csrf_ok,
    new_csrf_value,
    session_value,
)
from anycastlb.control.status_page.snapshot import read_load_balancers, read_pops, read_usage
from anycastlb.control.status_page.usage_view import span_of, usage_view, usage_window
from anycastlb.control.status_page.views import lb_detail, lb_rows, pop_rows

__all__ = ["REFRESH_SECONDS", "router"]

REFRESH_SECONDS = 2.0
_MAX_FORM_BYTES = 16 << 10
_HEADERS = {
    # Nothing but this origin's own script and style; no inline code, no frames, forms post here only.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: under no-referrer a browser posts the form with "Origin: null",
    # which the sign-in's CSRF check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATIC = {"status.js": "text/javascript; charset=utf-8", "status.css": "text/css; charset=utf-8"}


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_templates = Environment(
    loader=PackageLoader("anycastlb.control.status_page", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
_templates.filters["age"] = _age

router = APIRouter(prefix="/status", include_in_schema=False)


class _SignedOutError(Exception):
    """No usable session: the page sends the browser to the sign-in form, the JSON answers 401."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _viewer(request: Request) -> Principal:
    runtime: Runtime = request.app.state.runtime
    token = cookie_token(request.cookies.get(SESSION_COOKIE))
    if token is None:
        if runtime.admin_token is None:  # --insecure-dev: anyone is the admin, as on the API
            return Principal("admin", "admin")
        raise _SignedOutError("")
    try:
        viewer = await principal_of(runtime, token)
    except Unauthorized as error:
        raise _SignedOutError(f"Your token is no longer accepted ({error}); sign in again.") from None
    if viewer.kind == "pop":
        raise _SignedOutError("A PoP credential cannot sign in to the status page.")
    return viewer


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _csrf(request: Request) -> tuple[str, bool]:
    """This browser's CSRF value, and whether it is new (then it must be set as a cookie)."""
    value = request.cookies.get(CSRF_COOKIE)
    if value:
        return value, False
    if not hasattr(request.state, "csrf"):  # one new value per request: the form's and the cookie's
        request.state.csrf = new_csrf_value()
    return str(request.state.csrf), True


def _page(request: Request, title: str, body: str, *, status: int = 200, **context: Any) -> HTMLResponse:  # noqa: ANN401
    csrf, fresh = _csrf(request)
    html = _templates.get_template("base.html").render(
        title=title,
        body=Markup(body),  # noqa: S704 - rendered by the autoescaping templates above
        csrf=csrf,
        every_ms=int(REFRESH_SECONDS * 1000),
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=_HEADERS)
    if fresh:
        response.set_cookie(
            CSRF_COOKIE, csrf, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
        )
    return response


def _sign_in_page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
    csrf, _ = _csrf(request)
    body = _templates.get_template("sign_in.html").render(error=error, csrf=csrf)
    return _page(request, "Sign in", body, status=status, viewer=None, refresh=None)


def _json(payload: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers=_HEADERS)


def _now() -> datetime:
    return datetime.now(UTC)


def _pops_view(runtime: Runtime, viewer: Principal) -> tuple[list[Any], str]:
    pops, lbs = runtime.read(lambda s: (read_pops(s), read_load_balancers(s, viewer)))
    rows = pop_rows(viewer, pops, lbs, _now())
    return rows, _templates.get_template("pops.html").render(rows=rows, admin=viewer.kind == "admin")


def _lbs_view(runtime: Runtime, viewer: Principal) -> tuple[list[Any], str]:
    pops, lbs = runtime.read(lambda s: (read_pops(s), read_load_balancers(s, viewer)))
    rows = lb_rows(viewer, lbs, pops, _now())
    return rows, _templates.get_template("load_balancers.html").render(rows=rows)


def _lb_view(runtime: Runtime, viewer: Principal, tenant: str, name: str) -> tuple[Any, str]:
    pops, lbs = runtime.read(lambda s: (read_pops(s), read_load_balancers(s, viewer, (tenant, name))))
    detail = lb_detail(viewer, lbs, pops, tenant, name, _now())
    if detail is None:
        return None, ""
    return detail, _templates.get_template("load_balancer.html").render(detail=detail)


def _usage_view(runtime: Runtime, viewer: Principal, span: str) -> tuple[Any, str]:
    usage, live = runtime.read(lambda s: read_usage(s, viewer, usage_window(span, _now())))
    view = usage_view(viewer, usage, live, span)
    return view, _templates.get_template("usage.html").render(view=view, admin=viewer.kind == "admin")


async def _html(request: Request, page: str, title: str, data_url: str, build: Any) -> Response:  # noqa: ANN401
    try:
        viewer = await _viewer(request)
    except _SignedOutError as signed_out:
        if not signed_out.message:
            return RedirectResponse("/status/sign-in", status_code=303, headers=_HEADERS)
        return _sign_in_page(request, signed_out.message, status=401)
    view, body = await run_in_threadpool(build, request.app.state.runtime, viewer)
    if view is None:
        message = "No such load balancer (or not yours)."
        body = _templates.get_template("not_found.html").render(message=message)
        return _page(request, "Not found", body, status=404, viewer=viewer, page=page, refresh=None)
    return _page(request, title, body, viewer=viewer, page=page, refresh=data_url)


async def _data(request: Request, key: str, build: Any) -> Response:  # noqa: ANN401
    try:
        viewer = await _viewer(request)
    except _SignedOutError as signed_out:
        return _json({"detail": signed_out.message or "not signed in: open /status/sign-in"}, 401)
    view, html = await run_in_threadpool(build, request.app.state.runtime, viewer)
    if view is None:
        return _json({"detail": "no such load balancer (or not yours)"}, 404)
    dumped = (
        [row.model_dump(mode="json") for row in view]
        if isinstance(view, list)
        else view.model_dump(mode="json")
    )
    return _json({key: dumped, "html": html, "refresh_seconds": REFRESH_SECONDS})


@router.get("")
async def index() -> Response:
    return RedirectResponse("/status/pops", status_code=303, headers=_HEADERS)


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > _MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode(errors="replace"), max_num_fields=8)
    return {key: values[0] for key, values in fields.items()}


def _csrf_checked(request: Request, form: dict[str, str]) -> bool:
    return csrf_ok(
        request.cookies.get(CSRF_COOKIE),
        form.get("csrf"),
        request.headers.get("origin"),
        request.headers.get("host"),
    )


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await _form(request)
    if not _csrf_checked(request, form):
        return _sign_in_page(request, "The form expired or came from another site: try again.", status=403)
    token = form.get("token", "").strip()
    if not token:
        return _sign_in_page(request, "Paste a token first.", status=401)
    try:
        viewer = await principal_of(request.app.state.runtime, token)
    except Unauthorized as error:
        return _sign_in_page(request, f"That token was not accepted: {error}.", status=401)
    if viewer.kind == "pop":
        return _sign_in_page(request, "A PoP credential cannot sign in to the status page.", status=403)
    response = RedirectResponse("/status/pops", status_code=303, headers=_HEADERS)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    form = await _form(request)
    if not _csrf_checked(request, form):
        return _sign_in_page(request, "The form expired or came from another site: try again.", status=403)
    response = RedirectResponse("/status/sign-in", status_code=303, headers=_HEADERS)
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@router.get("/pops")
async def pops_page(request: Request) -> Response:
    return await _html(request, "pops", "PoPs", "/status/data/pops", _pops_view)


@router.get("/data/pops")
async def pops_data(request: Request) -> Response:
    return await _data(request, "pops", _pops_view)


@router.get("/load-balancers")
async def lbs_page(request: Request) -> Response:
    return await _html(request, "load-balancers", "Load balancers", "/status/data/load-balancers", _lbs_view)


@router.get("/data/load-balancers")
async def lbs_data(request: Request) -> Response:
    return await _data(request, "load_balancers", _lbs_view)


@router.get("/load-balancers/{tenant}/{name}")
async def lb_page(request: Request, tenant: str, name: str) -> Response:
    return await _html(
        request,
        "load-balancers",
        f"{tenant}/{name}",
        f"/status/data/load-balancers/{tenant}/{name}",
        lambda runtime, viewer: _lb_view(runtime, viewer, tenant, name),
    )


@router.get("/data/load-balancers/{tenant}/{name}")
async def lb_data(request: Request, tenant: str, name: str) -> Response:
    return await _data(
        request, "load_balancer", lambda runtime, viewer: _lb_view(runtime, viewer, tenant, name)
    )


@router.get("/usage")
async def usage_page(request: Request) -> Response:
    span = span_of(request.query_params.get("window"))
    return await _html(
        request,
        "usage",
        "Usage",
        f"/status/data/usage?window={span}",
        lambda runtime, viewer: _usage_view(runtime, viewer, span),
    )


@router.get("/data/usage")
async def usage_data(request: Request) -> Response:
    span = span_of(request.query_params.get("window"))
    return await _data(request, "usage", lambda runtime, viewer: _usage_view(runtime, viewer, span))


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media_type = _STATIC.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain", headers=_HEADERS)
    content = resources.files("anycastlb.control.status_page").joinpath("static", name).read_bytes()
    return Response(content, media_type=media_type, headers={**_HEADERS, "Cache-Control": "no-cache"})
