"""The tunnels helper: one process per edge that has ``tunnels``, forked by the supervisor first.

Why a process of its own: wireguard-go runs as its child (the supervisor reaps every child with
``waitpid(-1)`` and must not see them), a slow ``wg``/``ip`` call never stalls the supervisor's
signals and scrapes, and a crash here is restarted like any helper (the interfaces it left are
found by name and rebuilt).

Order: the supervisor forks this helper before health and the workers and waits (bounded) for
its "ready" on a pipe, written once the first :meth:`TunnelSet.apply` is done, so the first
health checks already go through the tunnels. Afterwards the helper gets every reloaded config on
its control pipe (as every child does) and applies its ``tunnels``; each turn it restarts a
wireguard-go that died. On SIGTERM (the last drain step, after the connections are done) or when
the supervisor is gone it removes every interface it made.

Every interface is covered by the guard (:mod:`anycastlb.tunnel.guard`: nodes may answer the PoP,
never open a connection to it or route through it) from before it is created until after it is
deleted; if ``nft`` fails, no interface is added or changed.
"""

import logging
import os
import select
import signal

from anycastlb.internal_errors import survived
from anycastlb.model.config import ConfigError, EdgeConfig
from anycastlb.tunnel.devices import TunnelSet
from anycastlb.tunnel.guard import GuardError, TunnelGuard
from anycastlb.tunnel.plan import TunnelPlanError, plan_tunnels
from anycastlb.wire.framing import ConfigPipeReader

__all__ = ["check_tunnels", "run_tunnels_helper"]

log = logging.getLogger("anycastlb.edge")

_TURN = 1.0  # seconds between checks of wireguard-go


def check_tunnels(config: EdgeConfig) -> None:
    """Refuse a config whose tunnels cannot all be brought up as written (two with one name), so a
    reload rejects it whole instead of the helper applying part of it."""
    try:
        plan_tunnels({}, config.tunnels)
    except TunnelPlanError as error:
        raise ConfigError(f"tunnels: {error}") from None


def _apply(tunnels: TunnelSet, guard: TunnelGuard, config: EdgeConfig) -> None:
    """The guard first, over the old and the new interfaces (none is ever up unguarded), then the
    interfaces, then the guard narrowed to what runs. Without a guard no interface changes."""
    desired = {tunnel.name for tunnel in config.tunnels}
    try:
        guard.apply(desired | tunnels.devices.keys())
    except GuardError as error:
        log.error("tunnel_guard_failed error=%r action=keep-previous-tunnels", str(error))
        return
    try:
        tunnels.apply(config.tunnels)
    except Exception as error:
        survived(log, "tunnels", "keep-previous-tunnels", error)
        return
    try:
        guard.apply(desired | tunnels.devices.keys())
    except GuardError as error:  # the wider guard stays: it covers these interfaces too
        log.error("tunnel_guard_failed error=%r action=keep-wider-guard", str(error))
    log.info("tunnels_applied interfaces=%d complete=%s", len(config.tunnels), tunnels.complete)


def run_tunnels_helper(config: EdgeConfig, control_fd: int, ready_fd: int | None) -> int:
    """Run until SIGTERM or until the supervisor goes away; returns the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the supervisor
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the supervisor's handler: `wg`/`ip` exits would wake us
    signal.signal(signal.SIGTERM, lambda *_: None)  # delivered through the wake-up fd
    tunnels, guard = TunnelSet(), TunnelGuard()
    try:
        _apply(tunnels, guard, config)
        if ready_fd is not None:
            os.write(ready_fd, b"ready")
            os.close(ready_fd)
        control = ConfigPipeReader(control_fd)
        while True:
            readable, _, _ = select.select([control_fd, wake_read], [], [], _TURN)
            if wake_read in readable and signal.SIGTERM in os.read(wake_read, 64):
                log.info("tunnels_stopping interfaces=%d", len(tunnels.devices))
                return 0
            if control_fd in readable:
                messages = control.read()
                if messages is None:
                    log.warning("supervisor_gone part=tunnels action=exit")
                    return 0
                for message in messages:
                    _apply(tunnels, guard, EdgeConfig.model_validate_json(message))
            tunnels.check()
    finally:
        tunnels.close()
        guard.remove()
