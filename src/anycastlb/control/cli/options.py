"""The options every control plane command shares: where the API is, the token, the output format,
the tenant to act for. Defined once here so a command cannot drift from the others (an env var, a
short flag or a help line that only some commands know)."""

import os
from typing import Annotated, Any, Literal

import typer

__all__ = [
    "ADMIN_TOKEN_ENV",
    "DEFAULT_URL",
    "TENANT_ENV",
    "TOKEN_ENV",
    "URL_ENV",
    "JsonOption",
    "OutputFormat",
    "OutputOption",
    "TenantOption",
    "TokenOption",
    "UrlOption",
    "output_format",
    "resolve_token",
    "tenant_option",
]

URL_ENV = "ANYCASTLB_URL"
TOKEN_ENV = "ANYCASTLB_TOKEN"  # noqa: S105 - the variable's name, not a secret
ADMIN_TOKEN_ENV = "ANYCASTLB_ADMIN_TOKEN"  # noqa: S105 - the same variable `anycastlb control` reads
TENANT_ENV = "ANYCASTLB_TENANT"
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
JsonOption = Annotated[bool, typer.Option("--json", help="The API's answer as JSON (same as -o json).")]


def output_format(output: OutputFormat, as_json: bool) -> OutputFormat:
    """The format a command prints in: ``--json`` is a shorthand for ``-o json``."""
    return "json" if as_json else output


def tenant_option(help_text: str) -> Any:  # noqa: ANN401 - typer's OptionInfo, typed Any by typer
    """``--tenant`` (or ANYCASTLB_TENANT), with the help line of the command: what it means when
    not given differs (the admin must name one to act, but reads every tenant's usage)."""
    return typer.Option("--tenant", envvar=TENANT_ENV, show_default=False, help=help_text)


TenantOption = Annotated[
    str | None,
    tenant_option("The tenant to act for. Default: the token's own tenant (the admin must name one)."),
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
