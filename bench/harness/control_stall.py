"""One tenant's largest load balancer against another tenant's small writes.

Tenant A updates, back to back, a load balancer at the spec limits (every PUT changes one backend
port, so every one is a real update: validated, dumped, digested, written, rendered); tenant B
creates one-backend load balancers one at a time. B's create latency with A running, against B
alone, is what one tenant's request costs another's writes (target: < 100 ms added)."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any

from bench.harness.control_stores import ControlUnderTest, lb_body

__all__ = ["StallRun", "big_spec", "measure_stall"]


def big_spec(name: str, listeners: int, per_listener: int, salt: int) -> dict[str, Any]:
    """``listeners`` x ``per_listener`` backends, IPv4; ``salt`` changes one port (a real update)."""
    return {
        "name": name,
        "listeners": [
            {
                "port": 1000 + index,
                "backends": [
                    {"address": f"10.{8 + index}.{node // 250}.{node % 250 + 1}", "port": 30000 + node % 1000}
                    for node in range(per_listener - 1)
                ]
                + [{"address": "10.255.255.254", "port": 20000 + salt % 10000}],
            }
            for index in range(listeners)
        ],
    }


@dataclass
class StallRun:
    store: str
    with_big: bool
    latencies_ms: list[float]
    big_puts: int
    big_ms: list[float]
    errors: int

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_stall(
    control: ControlUnderTest, tag: str, *, creates: int, with_big: bool, listeners: int, per_listener: int
) -> StallRun:
    """B's ``creates`` one at a time; with ``with_big``, A's PUTs loop until B is done."""
    token_a, token_b = control.tenant(f"a{tag}"), control.tenant(f"b{tag}")
    run = StallRun(control.store, with_big, [], 0, [], 0)
    done = threading.Event()

    def tenant_a() -> None:
        with control.client(token_a) as client:
            salt = 0
            while not done.is_set():
                salt += 1
                started = time.perf_counter()
                body = big_spec("big", listeners, per_listener, salt)
                answer = client.put(f"/v1/tenants/a{tag}/loadbalancers/big", json=body)
                run.big_ms.append((time.perf_counter() - started) * 1000)
                if answer.status_code not in (200, 201):
                    run.errors += 1
                    print(f"  A: {answer.status_code} {answer.text[:200]}", flush=True)
                    return
                run.big_puts += 1

    thread = threading.Thread(target=tenant_a, daemon=True)
    if with_big:
        thread.start()
        time.sleep(1.0)  # A's first create is done and its updates are running
    with control.client(token_b) as client:
        for index in range(creates):
            started = time.perf_counter()
            answer = client.post(f"/v1/tenants/b{tag}/loadbalancers", json=lb_body(f"small{index}"))
            run.latencies_ms.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 201:
                run.errors += 1
            time.sleep(0.01)
    done.set()
    if with_big:
        thread.join(60)
    return run


def stall_line(run: StallRun) -> str:
    big = f", A: {run.big_puts} PUTs, median {statistics.median(run.big_ms):.0f} ms" if run.big_ms else ""
    return (
        f"  {run.store:10} {'with A' if run.with_big else 'B alone':8}"
        f" B create p50 {run.quantile(0.5):6.1f} ms"
        f"  p99 {run.quantile(0.99):6.1f} ms  max {max(run.latencies_ms):6.1f} ms  errors {run.errors}{big}"
    )
