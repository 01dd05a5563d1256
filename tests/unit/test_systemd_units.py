"""The systemd units in deploy/systemd/, checked offline.

``systemd-analyze verify`` reads each unit as systemd would (unknown keys, bad values, missing
executables). It needs the ExecStart binary to exist, so it checks a copy whose commands run this
test's own interpreter (``python -m anycastlb.cli``) instead of the path docs/operations.md installs
to; it prints problems without failing, so any output fails the test. The rest asserts what the
units must keep true against the code: a stop timeout longer than the longest drain with the
model's defaults, reload = SIGHUP, the file limit, no root and only the capabilities the code
uses, writable paths where the code writes, and a syscall filter that allows what the edge and
the control plane were seen to call. tests/e2e/test_edge_capabilities.py runs the edge with the
edge unit's capabilities against a real router.
"""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from anycastlb.control.server import parse_listen
from anycastlb.control.store.engine import normalize_url
from anycastlb.edge import supervisor
from anycastlb.edge.state_store import default_state_dir
from anycastlb.model.bgp import BgpConfig
from anycastlb.model.config import EdgeConfig
from tests.support.systemd_units import UNITS, environment, load, seconds, value, words

ROOT = Path(__file__).resolve().parents[2]
EDGE, CONTROL = "anycastlb-edge.service", "anycastlb-control.service"
INSTALLED = "/opt/anycastlb/venv/bin/anycastlb"  # where docs/operations.md installs the program
OPERATIONS = ROOT / "docs" / "operations.md"

# What the edge may hold (see the unit's comments for why each): ports < 1024, BIRD's BFD sockets
# (SO_PRIORITY 7), splice pipes beyond the per-user pipe budget.
EDGE_CAPABILITIES = {"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_SYS_RESOURCE"}
# Every system call seen with `strace -f` in two runs: the edge with BGP and BFD against BIRD in
# network namespaces (ExaBGP, its bridge and the BFD BIRD included), a small and a 4 MiB response
# through a VIP (copy and splice), a SIGHUP reload and a SIGTERM drain; and the control plane on
# SQLite answering /healthz, creating a PoP, listing PoPs and stopping on SIGTERM. (Both ran as uid 0
# with only the units' capabilities, through setpriv: capset and setuid come from that, and from
# ExaBGP, which tries to drop root; they are allowed all the same.)
SYSCALLS_SEEN = frozenset(
    """
    accept4 access arch_prctl bind brk capget capset chdir chmod clock_nanosleep clone clone3 close
    close_range connect dup2 epoll_create1 epoll_ctl epoll_wait execve exit exit_group faccessat2 fchown fcntl
    fdatasync fstatfs ftruncate futex getcwd getdents64 getegid geteuid getgid getpeername getpgrp
    getpid getppid getrandom getsockname getsockopt gettid getuid ioctl kill listen lseek madvise
    mkdir mlock mmap mprotect mremap munmap newfstatat openat pipe2 poll prctl pread64 prlimit64
    pselect6 pwrite64 read readlink recvfrom recvmsg rmdir rseq rt_sigaction rt_sigprocmask
    rt_sigreturn sendmsg sendto set_robust_list set_tid_address setgid setpgid setsockopt setuid
    shutdown socket socketpair splice sysinfo tgkill umask uname unlink unlinkat vfork wait4 write
    """.split()  # noqa: SIM905 - ninety quoted names would hide the list
)
# The socket families those runs opened.
FAMILIES_SEEN = {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def exec_argv(line: str) -> list[str]:
    """An Exec*= line's words, without systemd's prefixes (``-``, ``@``, ``+``, ...)."""
    argv = shlex.split(line)
    argv[0] = argv[0].lstrip("-@:+!")
    return argv


def runnable_copy(name: str, directory: Path) -> Path:
    """The unit with every command of ours run by this interpreter (verify needs the binary)."""
    text = (UNITS / name).read_text()
    assert INSTALLED in text, f"{name} does not run {INSTALLED}"
    copy = directory / name
    copy.write_text(text.replace(INSTALLED, f"{sys.executable} -m anycastlb.cli"))
    return copy


def verify(path: Path) -> str:
    """systemd-analyze verify's complaints (it may print them and still exit 0)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (scripts/setup installs it)")
    result = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, cwd=path.parent, check=False
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        output += f"\n(exit status {result.returncode})"
    return output


@pytest.mark.parametrize("name", [EDGE, CONTROL])
def test_systemd_analyze_verify_accepts_the_unit(name: str, tmp_path: Path) -> None:
    complaints = verify(runnable_copy(name, tmp_path))
    assert complaints == "", f"systemd-analyze verify {name}:\n{complaints}"


def test_verify_as_run_here_reports_a_mistake(tmp_path: Path) -> None:
    """The check above must be able to fail: a typo'd key and a missing binary are reported."""
    copy = runnable_copy(EDGE, tmp_path)
    copy.write_text(copy.read_text().replace("LockPersonality=", "LockPersonalty=", 1))
    assert "Unknown key" in verify(copy)
    if not Path(INSTALLED).exists():  # a host where docs/operations.md was followed has it
        copy.write_text((UNITS / EDGE).read_text())
        assert "is not executable" in verify(copy)


def test_the_edge_stops_by_draining_and_systemd_waits_longer_than_a_drain() -> None:
    unit = load(EDGE)
    assert value(unit, "KillSignal") == "SIGTERM"
    # SIGTERM to the supervisor alone: it withdraws, waits, then stops its workers and helpers in order.
    assert value(unit, "KillMode") == "mixed"
    withdraw_delay = BgpConfig.model_fields["withdraw_delay"].default
    drain_timeout = EdgeConfig.model_fields["drain_timeout"].default
    # After drain_timeout the supervisor waits its grace, then kills what is left; its loop wakes
    # at least once a second.
    longest = withdraw_delay + drain_timeout + supervisor._GRACE_AFTER_DRAIN + 1.0
    timeout = seconds(value(unit, "TimeoutStopSec"))
    assert timeout > longest, (
        f"TimeoutStopSec={timeout:g}s, but a drain with the defaults may take {longest:g}s "
        f"(withdraw_delay {withdraw_delay:g} + drain_timeout {drain_timeout:g} + grace "
        f"{supervisor._GRACE_AFTER_DRAIN:g} + 1): systemd would SIGKILL a drain in progress"
    )


def test_reload_checks_the_config_then_sends_sighup_to_the_supervisor() -> None:
    unit = load(EDGE)
    reloads = unit["Service"]["ExecReload"]
    assert exec_argv(reloads[-1]) == ["/bin/kill", "-HUP", "$MAINPID"]
    for check in reloads[:-1]:
        argv = exec_argv(check)
        assert argv[:2] == [INSTALLED, "edge"], check
        assert "--check" in argv, check


def test_the_reload_check_fails_systemctl_reload_on_an_invalid_config(tmp_path: Path) -> None:
    """Run the unit's first ExecReload= as written, with the default arguments, on a good and a
    bad config: its exit status is what `systemctl reload` reports."""
    unit = load(EDGE)
    config = tmp_path / "edge.yaml"
    args = environment(unit)["ANYCASTLB_EDGE_ARGS"].replace("/etc/anycastlb/edge.yaml", str(config))
    argv = exec_argv(unit["Service"]["ExecReload"][0])
    assert "$ANYCASTLB_EDGE_ARGS" in argv
    at = argv.index("$ANYCASTLB_EDGE_ARGS")
    command = [sys.executable, "-m", "anycastlb.cli", *argv[1:at], *args.split(), *argv[at + 1 :]]

    config.write_text("pop: fra\nmetrics: null\n")
    good = subprocess.run(command, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stderr
    config.write_text("pop: fra\nworkers: 0\n")
    bad = subprocess.run(command, capture_output=True, text=True, check=False)
    assert bad.returncode != 0
    assert "workers" in bad.stderr


@pytest.mark.parametrize("name", [EDGE, CONTROL])
def test_descriptor_limit_is_high(name: str) -> None:
    soft = value(load(name), "LimitNOFILE").split(":")[0]
    assert soft == "infinity" or int(soft) >= 65536


@pytest.mark.parametrize("name", [EDGE, CONTROL])
def test_not_root_and_restarted_on_failure(name: str) -> None:
    unit = load(name)
    dynamic = unit["Service"].get("DynamicUser", ["no"])[-1] == "yes"
    user = unit["Service"].get("User", ["root"])[-1]
    assert dynamic or user not in ("root", "0"), f"{name} runs as root"
    assert value(unit, "NoNewPrivileges") == "yes"
    assert value(unit, "Restart") == "on-failure"
    assert seconds(value(unit, "RestartSec")) >= 1


def test_the_edge_holds_only_the_capabilities_the_code_uses() -> None:
    unit = load(EDGE)
    bounding, ambient = words(unit, "CapabilityBoundingSet"), words(unit, "AmbientCapabilities")
    assert ambient == bounding, "what the bounding set allows and what the edge gets should agree"
    assert bounding <= EDGE_CAPABILITIES, f"more than the edge needs: {bounding - EDGE_CAPABILITIES}"
    assert "CAP_NET_BIND_SERVICE" in ambient  # VIPs on 80 and 443


def test_the_control_plane_holds_no_capability() -> None:
    unit = load(CONTROL)
    assert unit["Service"]["CapabilityBoundingSet"] == [""]
    assert words(unit, "AmbientCapabilities") == set()
    args = environment(unit)["ANYCASTLB_CONTROL_ARGS"].split()
    assert parse_listen(args[args.index("--listen") + 1])[1] >= 1024  # no CAP_NET_BIND_SERVICE needed


def test_type_is_not_notify_while_nothing_speaks_sd_notify() -> None:
    sources = "".join(path.read_text() for path in (ROOT / "src" / "anycastlb").rglob("*.py"))
    speaks = "NOTIFY_SOCKET" in sources or "sd_notify" in sources
    for name in (EDGE, CONTROL):
        kind = value(load(name), "Type")
        assert kind in ("notify", "exec", "simple")
        assert (kind == "notify") == speaks, f"{name}: Type={kind}, but sd_notify spoken: {speaks}"


def test_the_edge_writes_only_where_the_unit_lets_it() -> None:
    """ProtectSystem=strict: the edge writes its private directories (metrics, ExaBGP, BIRD) to
    tempfile.gettempdir(), pointed at the runtime directory, and its state under /var/lib."""
    unit = load(EDGE)
    assert value(unit, "ProtectSystem") == "strict"
    runtime = value(unit, "RuntimeDirectory")
    assert environment(unit)["TMPDIR"] == f"%t/{runtime}"
    state = Path("/var/lib") / value(unit, "StateDirectory")
    assert default_state_dir("fra").is_relative_to(state)


def test_the_control_plane_keeps_its_database_in_its_state_directory() -> None:
    unit = load(CONTROL)
    assert value(unit, "ProtectSystem") == "strict"
    args = environment(unit)["ANYCASTLB_CONTROL_ARGS"].split()
    database = make_url(normalize_url(args[args.index("--database") + 1])).database
    assert database is not None
    assert Path(database).is_absolute()
    assert Path(database).parent == Path("/var/lib") / value(unit, "StateDirectory")


@pytest.mark.parametrize("name", [EDGE, CONTROL])
def test_the_sandbox_allows_what_the_programs_were_seen_to_do(name: str) -> None:
    unit = load(name)
    assert words(unit, "RestrictAddressFamilies") >= FAMILIES_SEEN
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (scripts/setup installs it)")
    listing = subprocess.run(
        [analyze, "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True
    ).stdout
    members: dict[str, list[str]] = {}
    current = ""
    for line in listing.splitlines():
        if line.startswith("@"):
            current = line.strip()
            members[current] = []
        elif line.strip() and not line.strip().startswith("#") and current:
            members[current].append(line.strip())

    def expand(item: str) -> set[str]:
        return set().union(*(expand(m) for m in members[item])) if item.startswith("@") else {item}

    allowed: set[str] = set()
    for line in unit["Service"]["SystemCallFilter"]:  # an allow list, then "~" lines deny from it
        named = set().union(*(expand(item) for item in line.removeprefix("~").split()))
        allowed = allowed - named if line.startswith("~") else allowed | named
    assert allowed >= SYSCALLS_SEEN, f"{name}'s SystemCallFilter refuses {sorted(SYSCALLS_SEEN - allowed)}"


def test_docs_install_to_where_the_units_point() -> None:
    text = OPERATIONS.read_text()
    for needed in (
        INSTALLED,
        "/etc/anycastlb/edge.yaml",
        "/etc/anycastlb/edge.env",
        "/etc/anycastlb/control.env",
        f"deploy/systemd/{EDGE}",
        f"deploy/systemd/{CONTROL}",
    ):
        assert needed in text, f"docs/operations.md never mentions {needed}"
