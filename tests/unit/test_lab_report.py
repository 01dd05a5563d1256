"""lab failover's report: whole in a pipe, every figure explained, and a client figure that the
client's own timeout set is marked as such (issue 13)."""

import io

from rich.console import Console

from anycastlb.lab.failover import FailoverResult
from anycastlb.lab.report import render_failover
from anycastlb.lab.timeline import Attempt, ClientWait, Movement

REFUSED = Attempt(10.01, 10.011, "10.10.0.3", error="ConnectionRefusedError: [Errno 111] Connection refused")
TIMED_OUT = Attempt(9.999, 11.999, "10.10.0.2", error="TimeoutError: timed out")


def movement(
    *failed: Attempt, answered_after: float = 2.005, client_wait: ClientWait | None = None
) -> Movement:
    return Movement(
        attempts=120 + len(failed),
        failed=failed,
        answered_by={"fra": 20, "par": 100},
        route_after=0.233,
        traffic_after=answered_after - 0.001,
        answered_after=answered_after,
        client_wait=client_wait,
    )


def result(mode: str, moved: Movement) -> FailoverResult:
    return FailoverResult(
        pop="fra",
        mode=mode,  # type: ignore[arg-type]
        moved=moved,
        returned=movement(answered_after=0.05),
        survivors=(),
        held_down=(),
        attempts=(),
        routes=(),
        edge_log="/run/anycastlb-lab/alb/pops/fra/edge.log",
    )


def piped(mode: str, moved: Movement) -> str:
    """What `anycastlb lab failover | tee run.log` writes: a console that is not a terminal."""
    out = io.StringIO()
    render_failover(result(mode, moved), Console(file=out, width=80))
    return out.getvalue()


def test_in_a_pipe_nothing_is_cut_to_80_columns() -> None:
    text = piped("kill", movement(REFUSED, REFUSED, REFUSED, TIMED_OUT, answered_after=0.02))
    assert "ConnectionRefusedError x3, TimeoutError x1" in text
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) > 80


def test_on_a_terminal_the_table_fits_the_terminal() -> None:
    out = io.StringIO()
    moved = movement(REFUSED, REFUSED, TIMED_OUT, answered_after=0.02)
    render_failover(
        result("kill", moved), Console(file=out, width=80, force_terminal=True, color_system=None)
    )
    assert max(len(line) for line in out.getvalue().splitlines()) <= 80


def test_a_silent_failover_marks_the_client_figure_that_its_timeout_set() -> None:
    text = piped("silent", movement(TIMED_OUT, client_wait="timeout"))
    row = next(line for line in text.splitlines() if "fra silent" in line)
    assert "233 ms" in row and "2005 ms*" in row
    assert "* set by the client's 2 s timeout, not by the network" in text
    assert "the route moved after the time beside it" in text


def test_a_request_answered_only_after_its_syn_was_sent_again_is_marked_too() -> None:
    text = piped("silent", movement(answered_after=1.012, client_wait="retry"))
    assert "1012 ms†" in text
    assert "† set by the client's kernel, not by the network" in text
    assert "* set by" not in text


def test_without_a_wait_of_the_client_the_client_figure_is_not_marked() -> None:
    text = piped("drain", movement(answered_after=0.02))
    assert "20 ms " in text and "set by the client" not in text


def test_the_legend_says_what_each_figure_and_the_mode_mean() -> None:
    text = piped("cut", movement(REFUSED, answered_after=0.3))
    assert "cut: fra's cable to the cluster's nodes is unplugged: its health checks fail" in text
    assert "route moved after: from the fault until the router's table sent the VIP" in text
    assert "client answered after: until the client (one request at a time" in text
