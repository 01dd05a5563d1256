"""The options every control plane command shares: where the API is, the token, the output format."""

import os
from typing import Annotated, Literal

import typer

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_URL",
    "TOKEN_ENV",
    "URL_ENV",
    "OutputFormat",
    "OutputOption",
    "TenantOption",
    "TokenOption",
    "UrlOption",
    "resolve_token",
]

URL_ENV = "ANYCASTLB_URL"
TOKEN_ENV = "ANYCASTLB_TOKEN"  # noqa: S105 - the variable's name, not a secret
ADMIN_TOKEN_ENV = "ANYCASTLB_ADMIN_TOKEN"  # noqa: S105 - the same variable `anycastlb control` reads
DEFAULT_URL = "http://127.0.0.1:8700"

OutputFormat = Literal["table", "json"]

UrlOption = Annotated[str, typer.Option("--url", envvar=URL_ENV, help="The control plane's URL.")]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        show_default=False,
        help=f"API token. Prefer {TOKEN_ENV} (a tenant's token) or {ADMIN_TOKEN_ENV} (the admin's): "
        "a command line is visible to every user (ps).",
    ),
]
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table, or json: the API's answer unchanged.")
]
TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        envvar="ANYCASTLB_TENANT",
        show_default=False,
        help="The tenant to act for. Default: the token's own tenant (the admin must name one).",
    ),
]


def resolve_token(flag: str | None) -> tuple[str | None, str | None]:
    """The token to send and where it came from (``--token``, ``ANYCASTLB_TOKEN``, then
    ``ANYCASTLB_ADMIN_TOKEN``), so a 401 can say which one to fix."""
    if flag:
        return flag, "--token"
    for variable in (TOKEN_ENV, ADMIN_TOKEN_ENV):
        value = os.environ.get(variable, "").strip()
        if value:
            return value, variable
    return None, None
