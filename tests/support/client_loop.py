"""A client that keeps opening connections through the edge while a test breaks a backend.

Each request is a new TCP connection from one of many loopback source addresses (Maglev picks the
node by client address, so one address would always hit the same node), ``GET /`` with
``Connection: close``, answered by the lab nginx with ``node=NAME client=ADDR``. Every attempt is
recorded with its start and end time, so a test can tell requests that started after a fault from
those already in flight when it happened.
"""

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    started: float  # time.monotonic()
    ended: float
    node: str | None  # None: the request failed
    error: str = ""


class ClientLoop:
    """Runs requests back to back in a thread until stopped; with ``every``, one request per ``every``
    seconds on a fixed schedule whether or not earlier ones answered (an open loop: a hung node
    cannot slow the client down, so the record shows how long requests kept going to it)."""

    def __init__(
        self,
        port: int,
        address: str = "127.0.0.1",
        sources: int = 100,
        timeout: float = 2.0,
        pause: float = 0.0,
        every: float | None = None,
    ) -> None:
        self.every = every
        self.port = port
        self.address = address
        self.sources = [f"127.0.0.{2 + i}" for i in range(sources)]
        self.timeout = timeout
        self.pause = pause
        self.attempts: list[Attempt] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ClientLoop":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        if self.every is not None:
            self._run_open_loop(self.every)
            return
        turn = 0
        while not self._stop.is_set():
            source = self.sources[turn % len(self.sources)]
            turn += 1
            self.attempts.append(self.request(source))
            if self.pause:
                time.sleep(self.pause)

    def _run_open_loop(self, every: float) -> None:
        with ThreadPoolExecutor(max_workers=64) as pool:
            turn = 0
            next_at = time.monotonic()
            while not self._stop.is_set():
                source = self.sources[turn % len(self.sources)]
                turn += 1
                pool.submit(self._record, source)
                next_at += every
                time.sleep(max(0.0, next_at - time.monotonic()))

    def _record(self, source: str) -> None:
        self.attempts.append(self.request(source))

    def request(self, source: str) -> Attempt:
        started = time.monotonic()
        try:
            with socket.create_connection(
                (self.address, self.port), timeout=self.timeout, source_address=(source, 0)
            ) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := sock.recv(4096):
                    answer += chunk
        except OSError as error:
            return Attempt(started, time.monotonic(), None, f"{type(error).__name__}: {error}")
        text = answer.decode(errors="replace")
        if " 200 " not in text.split("\r\n", 1)[0] or "node=" not in text:
            return Attempt(started, time.monotonic(), None, f"bad answer: {text[:80]!r}")
        node = text.split("node=", 1)[1].split()[0]
        return Attempt(started, time.monotonic(), node)

    # ---- reading the record ---------------------------------------------------------------------

    def failures(self, started_after: float = 0.0) -> list[Attempt]:
        return [a for a in self.attempts if a.node is None and a.started >= started_after]

    def nodes_after(self, moment: float) -> set[str]:
        return {a.node for a in self.attempts if a.started >= moment and a.node is not None}

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` more attempts are recorded."""
        target = len(self.attempts) + count
        deadline = time.monotonic() + timeout
        while len(self.attempts) < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"client loop made {len(self.attempts)} of {target} attempts")
            time.sleep(0.01)
