"""One command's session: the client, the tenant it acts for, its output, and its exit status."""

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import typer

from anycastlb.control.cli.errors import CommandError, InputError
from anycastlb.control.cli.options import OutputFormat, resolve_token

if TYPE_CHECKING:
    from rich.console import RenderableType

    from anycastlb.control.cli.client import Answer, ControlClient

__all__ = ["Command", "command", "print_json", "print_rich"]

_PIPE_WIDTH = 200


class Command:
    """What a command body uses: requests by path template (each part URL-quoted), the tenant, and
    :meth:`show`, which prints the API's JSON with ``-o json`` and a table otherwise."""

    def __init__(self, client: "ControlClient", output: OutputFormat) -> None:
        self.client = client
        self.output = output

    def send(self, method: str, template: str, *parts: str, body: object = None) -> "Answer":
        path = template.format(*(quote(part, safe="") for part in parts))
        return self.client.send(method, path, body)

    def get(self, template: str, *parts: str) -> Any:  # noqa: ANN401 - the API's JSON
        return self.send("GET", template, *parts).body

    def post(self, template: str, *parts: str, body: object) -> Any:  # noqa: ANN401
        return self.send("POST", template, *parts, body=body).body

    def patch(self, template: str, *parts: str, body: object) -> Any:  # noqa: ANN401
        return self.send("PATCH", template, *parts, body=body).body

    def delete(self, template: str, *parts: str) -> None:
        self.send("DELETE", template, *parts)

    def acting_tenant(self, given: str | None) -> str:
        """``--tenant``, else the token's own tenant (GET /v1/whoami)."""
        if given:
            return given
        caller = self.get("/v1/whoami")
        if caller["kind"] == "tenant":
            return str(caller["name"])
        if caller["kind"] == "admin":
            raise InputError(
                "as the admin, name the tenant to act for with --tenant NAME (or export "
                "ANYCASTLB_TENANT=NAME): the admin token belongs to no tenant"
            )
        raise InputError(
            f"this is PoP {caller['name']!r}'s credential, which cannot use tenant commands: "
            "use a tenant's token, or the admin token with --tenant NAME"
        )

    def show(self, data: Any, table: "Callable[[Any], RenderableType]") -> None:  # noqa: ANN401
        if self.output == "json":
            print_json(data)
        else:
            print_rich(table(data))

    def say(self, text: str) -> None:
        """A line for people (``deleted pool x``); with ``-o json`` it goes to stderr."""
        typer.echo(text, err=self.output == "json")


def print_json(data: Any) -> None:  # noqa: ANN401 - the API's JSON
    typer.echo(json.dumps(data, indent=2))


def print_rich(renderable: "RenderableType") -> None:
    """To a terminal: as wide as it is. To a pipe or file: unfolded up to 200 columns (not rich's
    80), so ``grep`` finds whole names and addresses."""
    from rich.console import Console  # noqa: PLC0415 - rich: ~20 ms at every `anycastlb` start

    console = Console(markup=False, emoji=False)  # API text is data, never markup
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = _PIPE_WIDTH
    console.print(renderable)


@contextmanager
def command(url: str, token: str | None, output: OutputFormat = "table") -> Iterator[Command]:
    """Run a command body; a :class:`CommandError` is printed as ``error: ...`` and becomes the
    exit status (1: the control plane, 2: the input)."""
    from anycastlb.control.cli.client import ControlClient  # noqa: PLC0415 - httpx: ~0.1 s at start-up

    secret, source = resolve_token(token)
    try:
        with ControlClient(url, secret, source) as client:
            yield Command(client, output)
    except CommandError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(error.exit_code) from None
