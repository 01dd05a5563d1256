"""A stand-in for the control plane's PoP API (standard library only), to test the edge against the
contract without the real control plane: ``GET /v1/pops/{pop}/desired`` (with the long poll) and
``PUT /v1/pops/{pop}/status``, both behind ``Authorization: Bearer <token>``.

The desired state lives in memory; a test sets a new one with :meth:`ControlStandIn.publish`, which
also records when (``published_at``) so a test can measure how long the edge took to apply it.
:meth:`stop` behaves like a control plane that crashed: the listening socket closes and every open
connection (long polls included) is cut without an answer. :meth:`start` brings it back on the
same port.
"""

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from anycastlb.lab.ports import free_port
from anycastlb.model.desired import PopDesiredState, PopStatusReport

_MAX_WATCH = 60.0


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx uses it
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self, pop: str) -> bool:
        owner = self.server.owner
        if self.headers.get("Authorization") != f"Bearer {owner.token}":
            self._reply(401, {"detail": "invalid token"})
            return False
        if pop != owner.pop:
            self._reply(404, {"detail": f"unknown PoP {pop!r}"})
            return False
        return True

    def _reply(self, status: int, body: object | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str] | None:
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["v1", "pops"]:
            return parts[2], parts[3]
        self._reply(404, {"detail": "not found"})
        return None

    def do_GET(self) -> None:
        route = self._route()
        if route is None or not self._authorized(route[0]):
            return
        if route[1] != "desired":
            self._reply(404, {"detail": "not found"})
            return
        query = parse_qs(urlsplit(self.path).query)
        owner = self.server.owner
        if query.get("watch", ["0"])[0] in ("1", "true"):
            since = int(query.get("since", ["0"])[0])
            timeout = min(_MAX_WATCH, float(query.get("timeout", ["30"])[0]))
            body = owner.wait_newer(since, timeout)
        else:
            body = owner.current()
        if body is None:  # stopped while waiting: a crash answers nothing
            self.close_connection = True
            return
        self._reply(200, raw=body)

    def do_PUT(self) -> None:
        route = self._route()
        if route is None:
            return
        length = int(self.headers.get("Content-Length", "0"))
        payload = self.rfile.read(length)
        if not self._authorized(route[0]):
            return
        if route[1] != "status":
            self._reply(404, {"detail": "not found"})
            return
        try:
            report = PopStatusReport.model_validate_json(payload)
        except ValueError as error:
            self._reply(422, {"detail": str(error)})
            return
        self.server.owner.record(report)
        self._reply(204)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: "ControlStandIn", address: tuple[str, int]) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.connections.clear()


class ControlStandIn:
    """The two PoP endpoints over an in-memory desired state, on 127.0.0.1."""

    def __init__(self, pop: str = "fra", token: str = "pop-token") -> None:  # noqa: S107 - a test token
        self.pop = pop
        self.token = token
        self.port = free_port()
        self.state = PopDesiredState(pop=pop, version=1)
        self.published_at: dict[int, float] = {1: time.monotonic()}
        self.reports: list[PopStatusReport] = []
        self._changed = threading.Condition()
        self._running = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- the test's side -------------------------------------------------------------------------

    def publish(self, state: PopDesiredState) -> PopDesiredState:
        """Make ``state`` (with the next version) the desired state; wakes the long polls."""
        with self._changed:
            state = state.model_copy(update={"pop": self.pop, "version": self.state.version + 1})
            self.state = state
            self.published_at[state.version] = time.monotonic()
            self._changed.notify_all()
        return state

    def wait_for_report(
        self, predicate: Callable[[PopStatusReport], bool], timeout: float = 10.0
    ) -> PopStatusReport:
        """The latest report that satisfies ``predicate``, waiting for one up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for report in reversed(self.reports):
                    if predicate(report):
                        return report
                left = deadline - time.monotonic()
                if left <= 0:
                    last = self.reports[-1] if self.reports else None
                    raise TimeoutError(f"no matching status report within {timeout}s; last: {last}")
                self._changed.wait(left)

    # ---- the server's side -----------------------------------------------------------------------

    def current(self) -> bytes | None:
        with self._changed:
            return self.state.model_dump_json().encode() if self._running else None

    def wait_newer(self, since: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._running and self.state.version <= since and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            return self.state.model_dump_json().encode() if self._running else None

    def record(self, report: PopStatusReport) -> None:
        with self._changed:
            self.reports.append(report)
            self._changed.notify_all()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "ControlStandIn":
        self._server = _Server(self, ("127.0.0.1", self.port))
        with self._changed:
            self._running = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Like a crash: stop listening, cut every connection, answer no long poll."""
        if self._server is None:
            return
        with self._changed:
            self._running = False
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._server.cut_connections()
        self._server = None

    def __enter__(self) -> "ControlStandIn":
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
