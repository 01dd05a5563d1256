"""The measurements: bulk transfer, new connections/s, open-loop latency, RSS of idle connections."""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import socket
import threading
import time
from collections.abc import Sequence

from .probes import wait_until
from .processes import CHILDREN, tree_rss_kib
from .results import IDLE_UNIT, LATENCY_RATE
from .servers import Contender, Nginx

SMALL_REQUEST = b"GET /small HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def bulk_transfer(port: int, streams: int, seconds: float) -> tuple[int, float, list[str]]:
    """Each stream downloads /big with curl in a loop until ``seconds`` are spent: bytes and wall seconds."""
    totals = [0] * streams
    errors: list[str] = []
    start = time.monotonic()
    deadline = start + seconds

    def stream(index: int) -> None:
        while (remaining := deadline - time.monotonic()) > 0.05:
            argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}"]
            argv += ["--max-time", f"{remaining:.3f}", f"http://127.0.0.1:{port}/big"]
            done = CHILDREN.run(argv, timeout=remaining + 10)
            status, _, size = done.stdout.strip().partition(" ")
            totals[index] += int(size or 0)
            # 28: --max-time cut it, as designed; a cut that leaves no status (HTTP 000) is a stall
            # only if curl had a second or more: on a busy box the last short try may see no header.
            cut_short = done.returncode == 28 and status == "000" and remaining < 1.0
            if done.returncode not in (0, 28) or (status != "200" and not cut_short):
                errors.append(
                    f"curl exit {done.returncode}, HTTP {status} (--max-time {remaining:.2f}s)"
                    f" {done.stderr.strip()}"
                )
                return

    threads = [threading.Thread(target=stream, args=(i,), daemon=True) for i in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(totals), time.monotonic() - start, errors


def connection_rate(port: int, seconds: float) -> tuple[float, int, list[str]]:
    """``wrk`` with ``Connection: close``: requests/s, requests completed, and any errors it reported.

    Every request is its own connection, so the count is also the connections served."""
    argv = [
        "wrk",
        "-t1",
        "-c50",
        f"-d{seconds:g}s",
        "-H",
        "Connection: close",
        f"http://127.0.0.1:{port}/small",
    ]
    done = CHILDREN.run(argv, timeout=seconds + 30)
    rate = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    count = re.search(r"(\d+) requests in", done.stdout)
    errors = [line.strip() for line in done.stdout.splitlines() if "errors" in line or "Non-2xx" in line]
    if done.returncode != 0 or rate is None or count is None:
        errors.append(f"wrk exit {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return (float(rate.group(1)) if rate else 0.0), (int(count.group(1)) if count else 0), errors


async def _timed_request(port: int, source: str | None = None) -> float | str:
    """Seconds for connect + GET /small + the complete response, or what went wrong."""
    start = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(5):
            local = (source, 0) if source else None
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
            writer.write(SMALL_REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
        elapsed = time.perf_counter() - start
        return elapsed if head.startswith(b"HTTP/1.1 200") else head.split(b"\r\n", 1)[0].decode()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        return type(error).__name__
    finally:
        if writer is not None:
            writer.close()


async def _open_loop(
    port: int, rate: int, seconds: float, sources: Sequence[str] = ()
) -> tuple[list[float | str], float]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks: list[asyncio.Task[float | str]] = []
    worst_lag = 0.0
    for index in range(int(rate * seconds)):
        due = start + index / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        worst_lag = max(worst_lag, loop.time() - due)
        source = sources[index % len(sources)] if sources else None
        tasks.append(asyncio.create_task(_timed_request(port, source)))
    return list(await asyncio.gather(*tasks)), worst_lag


def open_loop(
    port: int, rate: int, seconds: float, sources: Sequence[str] = ()
) -> tuple[list[float | str], float]:
    """Each request's seconds or what went wrong, and how far the generator fell behind (s).

    ``sources``: local addresses the requests are sent from, in turn (default: the kernel's)."""
    return asyncio.run(_open_loop(port, rate, seconds, sources))


def latency_ms(port: int, seconds: float) -> tuple[float, float, list[str]]:
    """p50 and p99 (nearest rank) of an open-loop run at :data:`LATENCY_RATE` requests/s."""
    outcomes, worst_lag = open_loop(port, LATENCY_RATE, seconds)
    times = sorted(o * 1000 for o in outcomes if isinstance(o, float))
    failures = [o for o in outcomes if isinstance(o, str)]
    errors = [f"{len(failures)} of {len(outcomes)} failed: {sorted(set(failures))}"] if failures else []
    if worst_lag > 0.05:
        errors.append(f"the generator fell {worst_lag * 1000:.0f} ms behind its schedule")
    if not times:
        return float("nan"), float("nan"), errors
    return nearest_rank(times, 0.50), nearest_rank(times, 0.99), errors


def nearest_rank(ordered: Sequence[float], quantile: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(quantile * len(ordered)) - 1))]


def idle_connection_count() -> int:
    """10,000, or fewer if a one-process proxy could not hold them: it needs two fds per connection.

    The limit is inherited from us; without CAP_SYS_RESOURCE (containers) it cannot be raised.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return min(IDLE_UNIT, (hard - 1_000) // 2 // 500 * 500)


def idle_rss_mib(contender: Contender, nginx: Nginx, count: int) -> tuple[float, list[str]]:
    """RSS growth of the contender's process tree while it holds ``count`` unfinished requests."""
    with contextlib.suppress(TimeoutError):  # the readiness probe's connection may still be closing
        wait_until(lambda: nginx.active_connections() == 0, "nginx without connections", 10)
    baseline_active = nginx.active_connections()
    before = tree_rss_kib(contender.pid)
    held: list[socket.socket] = []
    errors: list[str] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", contender.port), timeout=10)
            held.append(sock)
            sock.sendall(b"GET /small HTTP/1.1\r\n")  # no final CRLF: the request never completes
        target = baseline_active + count
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: nginx.active_connections() >= target, "idle connections at nginx", 30)
        time.sleep(1.0)  # let the proxy finish bookkeeping (timers, buffers) before sampling
        reached = nginx.active_connections() - baseline_active
        after = tree_rss_kib(contender.pid)
    except OSError as error:
        return float("nan"), [f"opened {len(held)} idle connections, then {error!r}"]
    finally:
        for sock in held:
            sock.close()
    if reached < count:
        errors.append(f"only {reached} of {count} idle connections reached nginx")
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: nginx.active_connections() <= baseline_active + 50, "idle connections closed", 30)
    return (after - before) / 1024 * IDLE_UNIT / max(1, min(reached, len(held))), errors
