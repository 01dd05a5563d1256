"""The README's "Control plane CLI" walk, run exactly as it is written there.

The shell block between ``<!-- walk:start -->`` and ``<!-- walk:end -->`` is read from README.md
and run by bash, one line after the other, from the repository's top directory, against a real
``anycastlb control`` on a free loopback port (SQLite, and no ``--allow-backend-network`` lab
switch: the defaults the README starts it with). The environment is what the README's reader has:
``ANYCASTLB_ADMIN_TOKEN`` from starting the control plane, ``ANYCASTLB_URL`` pointing at it, and
``anycastlb`` on the PATH. A walk that drifts from what the CLI accepts fails here, naming the line.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import anycastlb
from tests.support.control_plane import ADMIN_TOKEN, ControlProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
_BLOCK = re.compile(r"<!-- walk:start -->\n```sh\n(.*?)```\n<!-- walk:end -->", re.DOTALL)
_MARK = "::walk:: "


def walk_lines() -> list[str]:
    found = _BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(found) == 1, "README.md needs exactly one ```sh block between <!-- walk:start/end --> markers"
    return [line for line in found[0].splitlines() if line.strip()]


@pytest.fixture
def control(tmp_path: Path) -> Iterator[ControlProcess]:
    with ControlProcess(tmp_path, allow_backend_networks=()) as process:
        yield process


def _reader_environment(control: ControlProcess, bin_dir: Path) -> dict[str, str]:
    """``anycastlb`` on the PATH (this checkout's, with this interpreter) and the two variables the
    README's reader has set; no tenant token or tenant of the test runner's leaks in."""
    bin_dir.mkdir()
    command = bin_dir / "anycastlb"
    command.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m anycastlb.cli "$@"\n')
    command.chmod(0o755)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ANYCASTLB_") and key not in ("COLUMNS", "PYTHONPATH")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = str(Path(anycastlb.__file__).resolve().parents[1])
    env["ANYCASTLB_URL"] = control.url
    env["ANYCASTLB_ADMIN_TOKEN"] = ADMIN_TOKEN
    return env


def _script(lines: list[str]) -> str:
    """Each line, announced on stderr first, so a failure names the line that failed."""
    body = "\n".join(f"printf '%s\\n' {shlex.quote(_MARK + line)} >&2\n{line}" for line in lines)
    return f"set -eu\n{body}\n"


def test_the_readme_walk_runs_as_written(control: ControlProcess, tmp_path: Path) -> None:
    lines = walk_lines()
    result = subprocess.run(
        ["bash", "-c", _script(lines)],
        cwd=ROOT,
        env=_reader_environment(control, tmp_path / "bin"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        ran = [line.removeprefix(_MARK) for line in result.stderr.splitlines() if line.startswith(_MARK)]
        pytest.fail(
            f"README walk line failed (exit {result.returncode}): {ran[-1] if ran else '?'}\n"
            f"stderr:\n{result.stderr}\nstdout:\n{result.stdout}"
        )
    ran = [line.removeprefix(_MARK) for line in result.stderr.splitlines() if line.startswith(_MARK)]
    assert ran == lines

    with httpx.Client(
        base_url=control.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ) as client:
        load_balancers = {lb["name"]: lb for lb in client.get("/v1/tenants/acme/loadbalancers").json()}
        addresses = client.get("/v1/tenants/acme/ips").json()
        pops = [pop["name"] for pop in client.get("/v1/pops").json()]
    assert sorted(load_balancers) == ["api", "web"]
    web_families = sorted(":" in address for address in load_balancers["web"]["addresses"])
    assert web_families == [False, True]  # docs/examples/web.yaml asks for one VIP of each family
    assert [row["address"].startswith("2001:db8:100:") for row in addresses if row["static"]] == [True]
    assert pops == ["fra"]
    listed = result.stdout[result.stdout.index("\n[\n") + 1 :]  # `lb list -o json`: the API's JSON array
    assert {lb["name"] for lb in json.JSONDecoder().raw_decode(listed)[0]} == {"api", "web"}


def test_the_walk_names_only_files_of_the_repository() -> None:
    """``lb apply -f FILE`` in the walk is a file the reader has, from the top directory."""
    for line in walk_lines():
        words = shlex.split(line, comments=True)
        if "-f" in words:
            assert (ROOT / words[words.index("-f") + 1]).is_file(), line
