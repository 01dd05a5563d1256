"""The failover benchmark's client: a paced open loop of new connections from 100 source addresses.

Every ``pace`` seconds, on a fixed schedule that never waits for answers, it starts one request: a
new TCP connection from the next of 127.0.0.2..127.0.0.101 (both proxies pick the node by client
address, so one address would always reach the same node), ``GET /`` with ``Connection: close``,
read to EOF. The lab nginx answers ``node=NAME client=ADDR``; anything else, a connect or read
error, or no complete answer within ``timeout`` is a failure. Requests run as asyncio tasks in the
loop's own thread, so a request stuck on a hung node delays nothing. Times are wall-clock
(``time.time()``), like the proxies' log lines they are compared with.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

REQUEST = b"GET / HTTP/1.1\r\nHost: failover\r\nConnection: close\r\n\r\n"
SOURCES = tuple(f"127.0.0.{host}" for host in range(2, 102))


@dataclass(frozen=True)
class Attempt:
    started: float  # wall clock
    ended: float
    node: str | None  # the node that answered; None: the request failed
    error: str = ""


def parse_answer(answer: bytes) -> tuple[str | None, str]:
    """(node, "") for a lab nginx answer, else (None, what was wrong)."""
    text = answer.decode(errors="replace")
    if " 200 " not in text.split("\r\n", 1)[0] or "node=" not in text:
        return None, f"bad answer: {text[:60]!r}"
    return text.split("node=", 1)[1].split()[0], ""


class OpenLoop:
    """Starts one request every ``pace`` seconds until :meth:`finish`; then waits for those in flight."""

    def __init__(self, port: int, pace: float, timeout: float) -> None:
        self.port = port
        self.pace = pace
        self.timeout = timeout
        self.attempts: list[Attempt] = []
        self.max_lag = 0.0  # how far the generator fell behind its schedule, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> OpenLoop:
        self._thread.start()
        return self

    def finish(self) -> list[Attempt]:
        """Stop starting requests, wait until every one in flight has ended, return them all."""
        self._stop.set()
        self._thread.join(timeout=self.timeout + 10)
        if self._thread.is_alive():
            raise RuntimeError("the client loop did not finish its requests in time")
        return sorted(self.attempts, key=lambda attempt: attempt.started)

    async def _main(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        begin, turn = time.monotonic(), 0
        while not self._stop.is_set():
            due = begin + turn * self.pace
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            self.max_lag = max(self.max_lag, now - due)
            task = asyncio.create_task(self._request(SOURCES[turn % len(SOURCES)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            turn += 1
        if tasks:
            await asyncio.gather(*tasks)

    async def _request(self, source: str) -> None:
        started = time.time()
        node: str | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port, local_addr=(source, 0))
                try:
                    writer.write(REQUEST)
                    answer = await reader.read()
                finally:
                    writer.close()
            node, error = parse_answer(answer)
        except TimeoutError:
            error = f"no answer within {self.timeout:g}s"
        except OSError as failure:
            error = f"{type(failure).__name__}: {failure.strerror or failure}"
        self.attempts.append(Attempt(started, time.time(), node, error))
