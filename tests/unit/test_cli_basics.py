"""What a new user types first: ``--version``, shell completion, and a mistyped choice (issue 13)."""

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from anycastlb import __version__
from anycastlb.cli import FailoverMode, app
from anycastlb.lab.failover import MODES

SRC = Path(__file__).resolve().parents[2] / "src"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), prog_name="anycastlb")
    return result.exit_code, result.stdout, result.stderr


def test_version_option_and_version_command_print_the_same_line() -> None:
    assert run("--version") == (0, f"anycastlb {__version__}\n", "")
    assert run("version") == (0, f"anycastlb {__version__}\n", "")


def test_version_option_needs_no_sub_command_and_wins_over_one() -> None:
    code, out, _ = run("--version", "lab", "failover", "--mode", "bogus")
    assert (code, out) == (0, f"anycastlb {__version__}\n")


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "anycastlb", "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, f"anycastlb {__version__}\n"), done.stderr


def test_bash_completion_script_is_printed_for_the_anycastlb_command() -> None:
    code, out, _ = run("--show-completion", "bash")
    assert code == 0
    assert "_anycastlb_completion()" in out
    assert "_ANYCASTLB_COMPLETE=complete_bash" in out
    assert "complete -o default -F _anycastlb_completion anycastlb" in out


def test_an_unknown_failover_mode_is_a_usage_error_that_lists_the_modes() -> None:
    code, _, err = run("lab", "failover", "--mode", "bogus")
    assert code == 2  # click's usage errors; 1 is for a lab that fails
    assert "--mode" in err
    for mode in MODES:
        assert mode in err


def test_the_cli_offers_exactly_the_lab_failover_modes() -> None:
    assert tuple(mode.value for mode in FailoverMode) == MODES
