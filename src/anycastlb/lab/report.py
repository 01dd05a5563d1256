"""``anycastlb lab failover``'s report: how long traffic took to move, and what it cost the client."""

from rich.console import Console
from rich.table import Table

from anycastlb.lab.failover import FailoverResult
from anycastlb.lab.timeline import Movement

__all__ = ["render_failover"]


def _ms(seconds: float | None) -> str:
    return "[red]never[/]" if seconds is None else f"{seconds * 1000:.0f} ms"


def _row(table: Table, phase: str, movement: Movement) -> None:
    failed = len(movement.failed)
    errors = ", ".join(f"{kind} x{count}" for kind, count in movement.errors.items())
    table.add_row(
        phase,
        _ms(movement.route_after),
        _ms(movement.traffic_after),
        f"{'[green]' if failed == 0 else '[red]'}{failed}[/] of {movement.attempts}",
        ", ".join(f"{pop} {count}" for pop, count in sorted(movement.answered_by.items())),
        errors,
    )


def render_failover(result: FailoverResult, console: Console) -> None:
    table = Table(title=f"failover of {result.pop} ({result.mode})")
    for column in (
        "phase",
        "route moved after",
        "traffic moved after",
        "failed connections",
        "answered by",
        "errors",
    ):
        table.add_column(column)
    _row(table, f"{result.pop} {result.mode}", result.moved)
    if result.returned is not None:
        _row(table, f"{result.pop} back", result.returned)
    console.print(table)
    if result.mode == "kill":
        if result.survivors:
            console.print(f"[red]processes that outlived the killed edge:[/] {'; '.join(result.survivors)}")
        else:
            console.print("[green]nothing outlived the killed edge (ExaBGP died with it)[/]")
    for line in result.held_down:
        console.print(f"[yellow]the return was held down by flap dampening:[/] {line}", highlight=False)
    console.print(f"{result.pop}'s edge log: {result.edge_log}", highlight=False)
