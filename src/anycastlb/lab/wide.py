"""Print the lab's tables whole when the output is not a terminal.

rich lays everything out to the console's width, and a console writing to a pipe or a file has no
width but a default of 80 columns: a table wider than that gets its cells cut with an ellipsis, and
what is cut (an error's name, a process's command line) cannot be read back from the log, which is
where failover runs end up (CI, ``| tee``). So off a terminal, each thing is laid out at the width
its content needs; on a terminal, to the terminal's width as usual.
"""

from rich.console import Console, RenderableType
from rich.measure import Measurement

__all__ = ["print_whole"]

_WIDEST = 1000  # columns: a sanity bound for one line of a log, far past any table here


def print_whole(console: Console, renderable: RenderableType, *, highlight: bool | None = None) -> None:
    """``console.print(renderable)``, uncut when the console is not a terminal."""
    if console.is_terminal:
        console.print(renderable, highlight=highlight)
        return
    text = console.render_str(renderable) if isinstance(renderable, str) else renderable
    needed = Measurement.get(console, console.options.update_width(_WIDEST), text).maximum
    usual = console.width
    console.width = max(usual, min(needed, _WIDEST))  # print(width=) may only narrow the console
    try:
        console.print(renderable, highlight=highlight)
    finally:
        console.width = usual
