"""Create → applied: P simulated PoPs long-poll their desired state while load balancers are created
one at a time; per (create, PoP) pair, the time from sending the create request to that PoP
receiving a state that contains the new load balancer.

Every watcher is an asyncio task with its own ``httpx.AsyncClient`` and PoP credential, looping
``GET /v1/pops/{pop}/desired?watch=1&since=<last version>&timeout=30`` as the edge does; it stamps
each load balancer name the first time an answer contains it (clock read when the answer's body
is in, before JSON parsing). Creates start once every watcher has its first state and has had
1 s to park in its next long poll; each create is sent after the previous one's answer plus a
pause, so one change is in flight at a time. The watchers, the creating client and the control
plane all share the machine's cores: the figure includes the watchers' own CPU time.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.harness.control_stores import ControlUnderTest, lb_body

__all__ = ["WatchFigures", "measure_watch"]

_SETTLE_S = 1.0  # after every watcher's first state: time to send its next long poll
_GRACE_S = 10.0  # after the last create: how long a PoP may take before its pair counts as missing


@dataclass
class WatchFigures:
    pops: int
    creates: int
    latencies_ms: list[float]  # every (create, PoP) pair that arrived
    create_ms: list[float]  # create request → its 201, for reference
    missing: int  # pairs not seen within the grace period
    wrong_vips: int  # pairs whose state carried other VIPs than the create answered
    create_errors: Counter[str] = field(default_factory=Counter)
    watch_errors: Counter[str] = field(default_factory=Counter)
    answers: int = 0  # watch answers received while creating
    server_cpu_ms_per_create: float = 0.0
    client_cpu_ms_per_create: float = 0.0  # this process: the watchers and the creating client


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Watcher:
    def __init__(self, control: ControlUnderTest, pop: str, token: str) -> None:
        self.pop = pop
        self.client = httpx.AsyncClient(
            base_url=control.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        self.seen: dict[str, tuple[float, list[str]]] = {}
        self.has_state = asyncio.Event()
        self.errors: Counter[str] = Counter()
        self.answers = 0

    async def run(self) -> None:
        since = 0
        while True:
            try:
                response = await self.client.get(
                    f"/v1/pops/{self.pop}/desired", params={"watch": 1, "since": since, "timeout": 30}
                )
            except httpx.HTTPError as error:
                self.errors[type(error).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            now = time.perf_counter()
            if response.status_code != 200:
                self.errors[str(response.status_code)] += 1
                await asyncio.sleep(0.1)
                continue
            state = response.json()
            since = int(state["version"])
            self.answers += 1
            for lb in state["load_balancers"]:
                self.seen.setdefault(lb["name"], (now, list(lb["vips"])))
            self.has_state.set()


async def _measure(
    control: ControlUnderTest,
    tenant: tuple[str, str],
    pops: list[tuple[str, str]],
    creates: int,
    pause: float,
) -> WatchFigures:
    watchers = [_Watcher(control, pop, secret) for pop, secret in pops]
    tasks = [asyncio.create_task(watcher.run()) for watcher in watchers]
    figures = WatchFigures(len(pops), creates, [], [], 0, 0)
    sent: dict[str, float] = {}
    answered: dict[str, list[str]] = {}
    try:
        await asyncio.wait_for(asyncio.gather(*(w.has_state.wait() for w in watchers)), 60)
        await asyncio.sleep(_SETTLE_S)
        answers_before = sum(w.answers for w in watchers)
        cpu, own = control.cpu_seconds(), _own_cpu_seconds()
        async with httpx.AsyncClient(
            base_url=control.url, headers={"Authorization": f"Bearer {tenant[1]}"}, timeout=60
        ) as client:
            for index in range(creates):
                name = f"w-{index:04d}"
                sent[name] = time.perf_counter()
                try:
                    response = await client.post(f"/v1/tenants/{tenant[0]}/loadbalancers", json=lb_body(name))
                except httpx.HTTPError as error:  # a stuck server: stop, don't wait out every create
                    figures.create_errors[type(error).__name__] += 1
                    break
                figures.create_ms.append(1000 * (time.perf_counter() - sent[name]))
                if response.status_code == 201:
                    answered[name] = list(response.json()["addresses"])
                else:
                    figures.create_errors[str(response.status_code)] += 1
                await asyncio.sleep(pause)
        deadline = time.perf_counter() + _GRACE_S
        while time.perf_counter() < deadline and not all(
            name in w.seen for w in watchers for name in answered
        ):
            await asyncio.sleep(0.05)
        figures.server_cpu_ms_per_create = 1000 * (control.cpu_seconds() - cpu) / max(1, creates)
        figures.client_cpu_ms_per_create = 1000 * (_own_cpu_seconds() - own) / max(1, creates)
        figures.answers = sum(w.answers for w in watchers) - answers_before
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(w.client.aclose() for w in watchers))
    for watcher in watchers:
        figures.watch_errors.update(watcher.errors)
        for name, vips in answered.items():
            if name not in watcher.seen:
                figures.missing += 1
                continue
            at, state_vips = watcher.seen[name]
            figures.latencies_ms.append(1000 * (at - sent[name]))
            figures.wrong_vips += state_vips != vips
    return figures


def measure_watch(control: ControlUnderTest, pops: int, creates: int, pause: float) -> WatchFigures:
    """Register ``pops`` new PoPs and a tenant, measure (in a fresh event loop), delete the load
    balancers again. The PoPs serve every load balancer, so the state the watchers receive grows
    with each create, from empty to ``creates`` load balancers."""
    tenant = f"watch-{pops}"
    token = control.tenant(tenant)
    registered = control.pops(f"p{pops}-", pops)
    figures = asyncio.run(_measure(control, (tenant, token), registered, creates, pause))
    with control.client(token) as client:
        for index in range(creates):
            client.delete(f"/v1/tenants/{tenant}/loadbalancers/w-{index:04d}").raise_for_status()
    return figures
