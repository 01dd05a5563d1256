"""Reading the systemd units in deploy/systemd/ the way systemd does, for tests (no systemd needed)."""

import re
import shlex
from pathlib import Path

__all__ = ["UNITS", "Unit", "environment", "load", "parse_unit", "seconds", "value", "words"]

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"

Unit = dict[str, dict[str, list[str]]]

_SPAN_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_unit(text: str) -> Unit:
    """Sections → key → every value assigned, in order (ExecReload= may be given twice)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        if section is None:
            raise ValueError(f"{line!r} comes before any [Section]")
        key, _, assigned = line.partition("=")
        section.setdefault(key.strip(), []).append(assigned.strip())
    return unit


def load(name: str) -> Unit:
    return parse_unit((UNITS / name).read_text())


def value(unit: Unit, key: str, section: str = "Service") -> str:
    """A single-valued setting: the last assignment wins, as in systemd."""
    values = unit.get(section, {}).get(key)
    if not values:
        raise KeyError(f"[{section}] {key}= is not set")
    return values[-1]


def words(unit: Unit, key: str, section: str = "Service") -> set[str]:
    """A list setting (capabilities, address families): the words of every assignment."""
    return {word for assigned in unit.get(section, {}).get(key, []) for word in assigned.split()}


def environment(unit: Unit) -> dict[str, str]:
    """The Environment= assignments (quoted as systemd quotes them)."""
    found: dict[str, str] = {}
    for assigned in unit["Service"].get("Environment", []):
        for item in shlex.split(assigned):
            name, _, text = item.partition("=")
            found[name] = text
    return found


def seconds(span: str) -> float:
    """A systemd time span: ``60s``, ``1min 30s``, or a bare number of seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", span):
        return float(span)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", span)
    if not parts or "".join(n + u for n, u in parts) != span.replace(" ", ""):
        raise ValueError(f"cannot read the time span {span!r}")
    return sum(float(number) * _SPAN_UNITS[unit] for number, unit in parts)
