"""Allocations/s: N load balancer creates from C concurrent clients, each allocating one dynamic
IPv4, then the same N deletes; and the checks that no address was handed out twice.

Each client is a thread with its own ``httpx.Client`` (keep-alive, the tenant's token); the
threads take the next index from a shared counter until N requests were sent, so a slow request
delays only its own client. Latency is request sent → response read, as the client sees it.
Checks (any failure fails the bench): every 201 carries exactly one IPv4 address; no address is in
two answers; the tenant's ``GET /v1/tenants/{t}/ips`` lists exactly the answered addresses (its
count equals the successful creates); after the deletes it lists none.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness.control_stores import ControlUnderTest, lb_body

__all__ = ["AllocationFigures", "Requests", "address_problems", "measure_allocations"]


@dataclass
class Requests:
    """One batch of N requests: latencies of the successful ones (by index), errors by status."""

    seconds: float
    latencies_ms: dict[int, float] = field(default_factory=dict)
    bodies: dict[int, Any] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return len(self.latencies_ms)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass
class AllocationFigures:
    concurrency: int
    creates: Requests
    deletes: Requests
    server_cpu_ms_per_create: float
    server_cpu_ms_per_delete: float
    problems: list[str]  # empty: PASS


Send = Callable[[httpx.Client, int], httpx.Response]


def _batch(
    control: ControlUnderTest, token: str, count: int, concurrency: int, send: Send, expect: int
) -> Requests:
    lock = threading.Lock()
    next_index = iter(range(count))
    broken = threading.Event()  # a request failed below HTTP (timeout, reset): stop every client
    result = Requests(seconds=0.0)

    def client_loop() -> None:
        with control.client(token) as client:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None or broken.is_set():
                    return
                started = time.perf_counter()
                try:
                    response = send(client, index)
                except httpx.HTTPError as error:
                    with lock:
                        result.errors[type(error).__name__] += 1
                    broken.set()
                    return
                took = 1000 * (time.perf_counter() - started)
                with lock:
                    if response.status_code == expect:
                        result.latencies_ms[index] = took
                        result.bodies[index] = response.json() if response.content else None
                    else:
                        result.errors[str(response.status_code)] += 1

    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


def address_problems(created: dict[int, Any], listed: list[dict[str, Any]]) -> list[str]:
    """Why the answers and the tenant's IP list disagree with one address per load balancer."""
    problems = []
    answered: Counter[str] = Counter()
    for index, body in sorted(created.items()):
        addresses = body.get("addresses", [])
        if len(addresses) != 1 or ipaddress.ip_address(addresses[0]).version != 4:
            problems.append(f"create #{index} answered addresses {addresses}, expected one IPv4")
        answered.update(addresses)
    twice = sorted(address for address, times in answered.items() if times > 1)
    if twice:
        problems.append(f"DOUBLE ALLOCATION: {len(twice)} address(es) in two answers, e.g. {twice[:5]}")
    if len(listed) != len(created):
        problems.append(f"the tenant's IP list has {len(listed)} addresses, {len(created)} creates succeeded")
    if {item["address"] for item in listed} != set(answered):
        problems.append("the tenant's IP list differs from the addresses the creates answered")
    return problems


def measure_allocations(control: ControlUnderTest, count: int, concurrency: int) -> AllocationFigures:
    """Creates then deletes in a fresh tenant (so every concurrency starts from an empty one)."""
    tenant = f"alloc-{concurrency}"
    token = control.tenant(tenant)
    path = f"/v1/tenants/{tenant}/loadbalancers"

    def create(client: httpx.Client, index: int) -> httpx.Response:
        return client.post(path, json=lb_body(f"lb-{index:05d}"))

    def delete(client: httpx.Client, index: int) -> httpx.Response:
        return client.delete(f"{path}/lb-{names[index]:05d}")

    def listed() -> list[dict[str, Any]]:
        with control.client(token) as client:
            response = client.get(f"/v1/tenants/{tenant}/ips")
            response.raise_for_status()
            return list(response.json())

    cpu = control.cpu_seconds()
    creates = _batch(control, token, count, concurrency, create, 201)
    cpu_creates = control.cpu_seconds() - cpu
    problems = address_problems(creates.bodies, listed())
    names = sorted(creates.bodies)
    cpu = control.cpu_seconds()
    deletes = _batch(control, token, len(names), concurrency, delete, 204)
    cpu_deletes = control.cpu_seconds() - cpu
    if left := listed():
        problems.append(f"{len(left)} addresses still listed after deleting every load balancer")
    if deletes.ok != len(names):
        problems.append(f"{len(names) - deletes.ok} of {len(names)} deletes failed")
    return AllocationFigures(
        concurrency=concurrency,
        creates=creates,
        deletes=deletes,
        server_cpu_ms_per_create=1000 * cpu_creates / max(1, creates.ok),
        server_cpu_ms_per_delete=1000 * cpu_deletes / max(1, deletes.ok),
        problems=problems,
    )
