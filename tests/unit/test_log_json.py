"""--log-format json: each message split back into its event and fields, tested against every log
call the source makes (read from the source itself, so a new spelling is tested as it lands)."""

import ast
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from anycastlb.log_json import RESERVED, JsonFormatter, split_message

_SRC = Path(__file__).resolve().parents[2] / "src" / "anycastlb"
_LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
_CONVERSION = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?([sdrfgx%])")
# key=%X where the conversion is the whole value (port=%d/%s is one string, "42/fra-1")
_KEY = re.compile(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_.-]*)=(%[-#0 +]*\d*(?:\.\d+)?[sdrfgx](?=\s|$))?")
# A value as the code passes it, for each conversion: %r of a string with a space and a quote, as
# an error message is; %s of a name (an id, a URL, a listener).
_SAMPLES = {"s": "fra-1", "d": 42, "r": "it's gone: no route", "f": 1.5, "g": 2.5, "x": 255}


def _log_calls() -> list[tuple[str, int, str]]:
    """(file, line, format string) of every logging call with a literal format."""
    found = []
    for path in sorted(_SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            if not (isinstance(owner, ast.Name) and owner.id.lstrip("_") in {"log", "logger"}):
                continue
            args = node.args[1:] if node.func.attr == "log" else node.args
            if (node.func.attr in _LEVELS or node.func.attr == "log") and args:
                first = args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.append((str(path.relative_to(_SRC)), node.lineno, first.value))
    return found


CALLS = _log_calls()


def test_the_source_has_the_log_calls_this_test_reads() -> None:
    assert len(CALLS) > 80  # about a hundred today: a parse that finds none must not pass


@pytest.mark.parametrize(("where", "line", "fmt"), CALLS, ids=[f"{w}:{n}" for w, n, _ in CALLS])
def test_every_log_line_of_the_source_splits_into_its_event_and_fields(
    where: str, line: int, fmt: str
) -> None:
    conversions = [c for c in _CONVERSION.findall(fmt) if c != "%"]
    samples: list[Any] = [_SAMPLES[c] for c in conversions]
    if fmt.startswith("%s "):  # the event is an argument (health changes, refusal lines)
        samples[0] = "backend_down"
    message = fmt % tuple(samples)
    fields = split_message(message)
    words = fmt.split(" ", 1)
    if re.fullmatch(r"[a-z][a-z0-9_]*", words[0]):
        assert fields["event"] == words[0]
    for key, conversion in _KEY.findall(fmt):
        name = f"event_{key}" if key in RESERVED else key
        assert name in fields, f"{key} missing from {fields} (message: {message})"
        if conversion.endswith("r"):
            assert fields[name] == _SAMPLES["r"]
        elif conversion.endswith("d"):
            assert fields[name] == 42
    json.dumps(fields)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "worker_died worker=2 pid=812 code=-9 action=respawn",
            {"event": "worker_died", "worker": 2, "event_pid": 812, "code": -9, "action": "respawn"},
        ),
        (
            "listener_unbound listener=web error='Address already in use' (the other listeners serve)",
            {
                "event": "listener_unbound",
                "listener": "web",
                "error": "Address already in use",
                "note": "(the other listeners serve)",
            },
        ),
        (
            "service_invalid service=a/b problems=('port 0: out of range', \"x='y'\") action=keep-serving",
            {
                "event": "service_invalid",
                "service": "a/b",
                "problems": "('port 0: out of range', \"x='y'\")",
                "action": "keep-serving",
            },
        ),
        (
            "drain_connections pop=fra timeout=5.0s",
            {"event": "drain_connections", "pop": "fra", "timeout": "5.0s"},
        ),
        ("desired_applied version=7 after=12.5", {"event": "desired_applied", "version": 7, "after": 12.5}),
        (
            "x error=\"it's\" quoted='42' empty= z",
            {"event": "x", "error": "it's", "quoted": "42", "empty": "", "note": "z"},
        ),
        ("Started server process [4242]", {"event": "log", "message": "Started server process [4242]"}),
        ("controller_stopping", {"event": "controller_stopping"}),
        ("odd error='unterminated", {"event": "odd", "error": "'unterminated"}),
        ("twice a=1 a=2", {"event": "twice", "a": 1, "a_": 2}),
    ],
)
def test_split_message_reads_the_spellings_the_code_uses(message: str, expected: dict[str, Any]) -> None:
    assert split_message(message) == expected


def test_a_record_is_one_json_object_with_the_text_lines_fields() -> None:
    record = logging.LogRecord(
        "anycastlb.edge",
        logging.WARNING,
        __file__,
        1,
        "vip_held_down prefix=%s for=%.1fs",
        ("1.2.3.4/32", 3.0),
        None,
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "WARNING"
    assert parsed["logger"] == "anycastlb.edge"
    assert isinstance(parsed["pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", parsed["ts"])
    assert (parsed["event"], parsed["prefix"], parsed["for"]) == ("vip_held_down", "1.2.3.4/32", "3.0s")


def test_a_traceback_stays_on_the_line() -> None:
    try:
        int("boom")
    except ValueError:
        record = logging.LogRecord("a", logging.ERROR, __file__, 1, "crashed part=x", (), sys.exc_info())
    parsed = json.loads(JsonFormatter().format(record))
    assert "ValueError: invalid literal" in parsed["exc_info"]


@pytest.mark.parametrize("command", [["edge"], ["control"], ["controller"], ["demo"], ["lab", "up"]])
def test_every_long_running_command_takes_log_format(command: list[str]) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from anycastlb.cli import app  # noqa: PLC0415

    runner = CliRunner()
    assert "--log-format" in runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output
    refused = runner.invoke(app, [*command, "--log-format", "yaml"])
    assert refused.exit_code == 2
