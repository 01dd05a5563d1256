"""scripts/setup is what a new user runs as root on their machine: it must say what it installs
(the README lists every Debian package), use the project's virtualenv (PEP 668), and never stop or
kill anything it did not start."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUP = (ROOT / "scripts" / "setup").read_text()


def _apt_packages() -> list[str]:
    match = re.search(r"^APT_PACKAGES=\(([^)]*)\)", SETUP, re.MULTILINE | re.DOTALL)
    assert match, "scripts/setup has no APT_PACKAGES=(...) line"
    return match.group(1).split()


def test_the_readme_lists_every_package_setup_installs() -> None:
    readme = (ROOT / "README.md").read_text()
    listed = re.search(r"with `apt-get`[^`]*`([^`]+)`", readme)
    assert listed, "README.md no longer lists scripts/setup's apt packages"
    assert sorted(listed.group(1).split()) == sorted(_apt_packages())


def test_python_packages_go_into_the_project_virtualenv() -> None:
    assert "python3-venv" in _apt_packages()
    assert "python3 -m venv" in SETUP
    pip_lines = [
        line for line in SETUP.splitlines() if "pip install" in line and not line.lstrip().startswith("#")
    ]
    assert pip_lines, "scripts/setup installs the project with pip"
    # After `source scripts/lib/venv.sh`, `python` is the venv's; `python3 -m pip` would be the system's.
    assert all(line.lstrip().startswith(("python -m pip", "echo")) for line in pip_lines), pip_lines
    assert SETUP.index("source scripts/lib/venv.sh") < SETUP.index("python -m pip")


def test_every_script_runs_from_the_virtualenv() -> None:
    for name in ("check", "test", "demo"):
        assert "source scripts/lib/venv.sh" in (ROOT / "scripts" / name).read_text(), name


def test_setup_stops_and_kills_nothing() -> None:
    code = "\n".join(line for line in SETUP.splitlines() if not line.lstrip().startswith("#"))
    stopping = re.compile(
        r"\b(pkill|killall|kill\s+-?\w|systemctl\s+(stop|kill|restart)|invoke-rc\.d|service\s+\S+\s+(stop|restart))"
    )
    assert not stopping.findall(code), "scripts/setup stops or kills something"
