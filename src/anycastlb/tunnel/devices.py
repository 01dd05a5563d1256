"""A set of tunnel interfaces kept equal to the desired ones, and wireguard-go restarted if it dies.

:meth:`TunnelSet.apply` takes the whole desired set (declare, don't command), plans the steps
(:func:`~anycastlb.tunnel.plan.plan_tunnels`) and runs them one interface at a time: one that
fails is logged and left out, the others go on, and :meth:`TunnelSet.check` (called every turn of
its owner's loop) tries it again later. A wireguard-go that died takes its interface with it; the
check brings it back with a backoff (0.5 s doubling to 30 s, reset once it has run for a minute),
so a process that dies at start is not restarted in a tight loop.
"""

import logging
import time
from collections.abc import Callable

from anycastlb.model.tunnel import TunnelInterface
from anycastlb.tunnel.interface import TunnelDevice, TunnelError
from anycastlb.tunnel.plan import plan_tunnels

__all__ = ["TunnelSet"]

log = logging.getLogger("anycastlb.tunnel")

_FIRST_BACKOFF = 0.5
_MAX_BACKOFF = 30.0
_STABLE_AFTER = 60.0


class TunnelSet:
    def __init__(
        self,
        device: Callable[[TunnelInterface], TunnelDevice] = TunnelDevice,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._device = device
        self._clock = clock
        self.desired: tuple[TunnelInterface, ...] = ()
        self.devices: dict[str, TunnelDevice] = {}
        self._backoff: dict[str, float] = {}  # name -> the next wait after a failure
        self._retry_at: dict[str, float] = {}  # name -> not before (failed or died)
        self._up_since: dict[str, float] = {}

    @property
    def complete(self) -> bool:
        """Every desired interface runs as desired."""
        return all(
            self.devices.get(i.name) is not None and self.devices[i.name].interface == i for i in self.desired
        )

    def apply(self, desired: tuple[TunnelInterface, ...]) -> None:
        """Make the running interfaces equal to ``desired`` (raises only if ``desired`` is invalid)."""
        plan = plan_tunnels({name: d.interface for name, d in self.devices.items()}, desired)
        self.desired = desired
        for name in plan.remove:
            self.devices.pop(name).down()
            self._forget(name)
            log.info("tunnel_removed interface=%s", name)
        for change in plan.change:
            try:
                self.devices[change.interface.name].change(change)
            except TunnelError as error:
                # the interface stays as it was; rebuilt from scratch on a later check
                log.error(
                    "tunnel_change_failed interface=%s error=%r action=recreate",
                    change.interface.name,
                    str(error),
                )
                self._fail(change.interface.name)
        for interface in plan.create:
            self._up(interface)

    def check(self) -> None:
        """Restart what died and retry what failed, each once its backoff has passed."""
        now = self._clock()
        for name, device in list(self.devices.items()):
            code = device.exited()
            if code is None:
                if now - self._up_since.get(name, now) > _STABLE_AFTER:
                    self._backoff.pop(name, None)
                continue
            wait = self._fail(name)
            log.error("tunnel_process_died interface=%s code=%d action=restart in=%.1fs", name, code, wait)
        for interface in self.desired:
            if interface.name not in self.devices and now >= self._retry_at.get(interface.name, 0.0):
                self._up(interface)

    def close(self) -> None:
        """Remove every interface this set brought up."""
        for name in list(self.devices):
            self.devices.pop(name).down()
            log.info("tunnel_removed interface=%s", name)
        self.desired = ()

    def _up(self, interface: TunnelInterface) -> None:
        device = self._device(interface)
        try:
            device.up()
        except TunnelError as error:
            wait = self._fail(interface.name)
            log.error(
                "tunnel_up_failed interface=%s error=%r action=retry in=%.1fs",
                interface.name,
                str(error),
                wait,
            )
            return
        self.devices[interface.name] = device
        self._up_since[interface.name] = self._clock()
        self._retry_at.pop(interface.name, None)

    def _fail(self, name: str) -> float:
        """Take the interface down and schedule its next attempt; returns the wait."""
        device = self.devices.pop(name, None)
        if device is not None:
            device.down()
        wait = self._backoff.get(name, _FIRST_BACKOFF)
        self._backoff[name] = min(wait * 2, _MAX_BACKOFF)
        self._retry_at[name] = self._clock() + wait
        return wait

    def _forget(self, name: str) -> None:
        for table in (self._backoff, self._retry_at, self._up_since):
            table.pop(name, None)
