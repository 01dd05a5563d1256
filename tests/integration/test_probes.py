"""Health probes against real loopback servers: verdicts, reasons, timeouts, TLS, kube-proxy, nginx."""

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from anycastlb.health.probes import run_probe
from anycastlb.health.probes.http import USER_AGENT
from anycastlb.health.result import ProbeResult
from anycastlb.lab.nginx import NginxBackend
from anycastlb.lab.ports import free_port
from anycastlb.model.config import HealthCheck, ProxyProtocolVersion

pytestmark = pytest.mark.integration

Handler = Callable[[socket.socket], None]


class ScriptedServer:
    """A loopback TCP server in a thread: runs ``handler`` on each accepted connection, then closes it.

    ``requests`` keeps what each HTTP handler read; ``endings`` how each connection's client left
    ("eof" for a FIN, "reset" for a RST), recorded by the handlers that wait for it.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, 0), family=family)
        self.listener.settimeout(0.02)
        self.port: int = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.endings: list[str] = []
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError):  # clients may reset; that is theirs to do
                conn.settimeout(5)
                self.handler(conn)

    def wait_for_client_to_leave(self, conn: socket.socket) -> None:
        """Read until the client closes and record how it did (a handler's last step)."""
        try:
            while conn.recv(4096):
                pass
            self.endings.append("eof")
        except ConnectionResetError:
            self.endings.append("reset")
        self.ended.set()

    def read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        self.requests.append(data)
        return data


def http_response(status: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def answering(raw: bytes) -> Callable[[ScriptedServer], Handler]:
    """A handler that reads one request and writes ``raw`` back."""

    def make(server: ScriptedServer) -> Handler:
        def handle(conn: socket.socket) -> None:
            server.read_request(conn)
            conn.sendall(raw)

        return handle

    return make


@contextlib.contextmanager
def serving(make: Callable[[ScriptedServer], Handler], host: str = "127.0.0.1") -> Iterator[ScriptedServer]:
    server = ScriptedServer(lambda conn: None, host)
    server.handler = make(server)
    with server:
        yield server


def probe(
    check: HealthCheck, port: int, address: str = "127.0.0.1", proxy: ProxyProtocolVersion = "none"
) -> ProbeResult:
    return asyncio.run(run_probe(check, address, port, proxy))


def http_check(**fields: Any) -> HealthCheck:
    return HealthCheck(**{"type": "http", "path": "/health", **fields})


def k8s_check(port: int) -> HealthCheck:
    return HealthCheck(type="k8s", port=port)


def kube_proxy_body(local: int, healthy: bool = True) -> bytes:
    service = {"namespace": "default", "name": "web"}
    return json.dumps({"service": service, "localEndpoints": local, "serviceProxyHealthy": healthy}).encode()


# ---- tcp ------------------------------------------------------------------------------------------


def test_tcp_probe_connects_and_leaves_with_a_fin_not_a_reset() -> None:
    check = HealthCheck(type="tcp")
    with serving(lambda server: server.wait_for_client_to_leave) as server:
        result = probe(check, server.port)
        assert server.ended.wait(5)

    assert result.ok
    assert result.reason == "connected"
    assert 0 < result.latency < check.timeout  # measured, and a probe slower than that would time out
    assert result.weight is None
    assert server.endings == ["eof"]


def test_tcp_probe_of_a_port_nobody_listens_on_says_connection_refused() -> None:
    result = probe(HealthCheck(type="tcp"), free_port())

    assert not result.ok
    assert result.reason == "connection refused"


def test_tcp_probe_reaches_an_ipv6_backend() -> None:
    with serving(lambda server: server.wait_for_client_to_leave, host="::1") as server:
        result = probe(HealthCheck(type="tcp"), server.port, address="::1")

    assert result.ok, result.reason


def test_tcp_probe_of_a_full_accept_queue_times_out_while_connecting() -> None:
    # backlog 0 and one connection nobody accepts: Linux drops further SYNs, so connect() hangs.
    with socket.create_server(("127.0.0.1", 0), backlog=0) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            result = probe(HealthCheck(type="tcp", timeout="100ms", interval="500ms"), port)

    assert not result.ok
    assert result.reason == "timeout after 100 ms connecting"


def test_check_port_overrides_the_backends_port() -> None:
    with serving(lambda server: server.wait_for_client_to_leave) as server:
        result = probe(HealthCheck(type="tcp", port=server.port), free_port())

    assert result.ok, result.reason


# ---- http -----------------------------------------------------------------------------------------


def test_http_probe_is_healthy_on_200_and_says_who_it_is() -> None:
    with serving(answering(http_response("200 OK", b"ok"))) as server:
        result = probe(http_check(expect_body="ok"), server.port)

    assert (result.ok, result.reason) == (True, "HTTP 200")
    request = server.requests[0].decode()
    assert request.startswith("GET /health HTTP/1.1\r\n")
    assert "\r\nhost: 127.0.0.1\r\n" in request.lower()
    assert f"user-agent: {USER_AGENT}\r\n".lower() in request.lower()
    assert USER_AGENT == "anycastlb-health/0.1.0"
    assert "connection: close\r\n" in request.lower()


def test_http_probe_fails_on_503() -> None:
    with serving(answering(http_response("503 Service Unavailable", b"down"))) as server:
        result = probe(http_check(), server.port)

    assert (result.ok, result.reason) == (False, "HTTP 503")


def test_http_probe_accepts_only_the_listed_statuses_when_given() -> None:
    with serving(answering(http_response("204 No Content"))) as server:
        result = probe(http_check(expect_status=(200,)), server.port)

    assert (result.ok, result.reason) == (False, "HTTP 204")


def test_http_probe_fails_when_the_body_lacks_the_expected_text() -> None:
    with serving(answering(http_response("200 OK", b"not yet"))) as server:
        result = probe(http_check(expect_body="ok"), server.port)

    assert (result.ok, result.reason) == (False, "HTTP 200 but body lacks 'ok'")


def test_http_probe_reads_no_more_than_64_kib_of_body() -> None:
    body = b"x" * 70_000 + b"ok"
    with serving(answering(http_response("200 OK", body))) as server:
        result = probe(http_check(expect_body="ok"), server.port)

    assert (result.ok, result.reason) == (False, "HTTP 200 but body lacks 'ok'")


def test_http_probe_reports_a_garbage_answer_as_malformed() -> None:
    with serving(answering(b"garbage\r\n\r\n")) as server:
        result = probe(http_check(), server.port)

    assert not result.ok
    assert result.reason.startswith("malformed HTTP response: illegal status line")


def test_http_probe_of_a_server_that_closes_after_reading_the_request_says_so() -> None:
    with serving(answering(b"")) as server:
        result = probe(http_check(), server.port)

    assert (result.ok, result.reason) == (False, "connection closed before a response")


def test_http_probe_of_a_server_that_closes_right_after_accept_fails() -> None:
    # Whether our request reached the socket before its close() decides FIN or RST: both are fine.
    with serving(lambda server: lambda conn: None) as server:
        result = probe(http_check(), server.port)

    assert not result.ok
    assert result.reason in {"connection closed before a response", "connection reset"}


def test_http_probe_of_a_silent_server_times_out_in_time_and_closes_its_socket() -> None:
    def silent(server: ScriptedServer) -> Handler:
        def handle(conn: socket.socket) -> None:
            server.read_request(conn)
            server.wait_for_client_to_leave(conn)

        return handle

    check = http_check(timeout="250ms", interval="5s")
    with serving(silent) as server:
        started = time.monotonic()
        result = probe(check, server.port)
        elapsed = time.monotonic() - started
        assert server.ended.wait(5)

    assert (result.ok, result.reason) == (False, "timeout after 250 ms waiting for the answer")
    # Not before the timeout; the upper bound only leaves room for a loaded machine, far below the
    # interval a probe that ignored its timeout would run into.
    assert check.timeout <= result.latency <= elapsed < check.timeout + 1.5
    assert server.endings == ["eof"]


def test_a_cancelled_probe_closes_its_socket_and_propagates_the_cancellation() -> None:
    def silent(server: ScriptedServer) -> Handler:
        def handle(conn: socket.socket) -> None:
            server.read_request(conn)
            server.wait_for_client_to_leave(conn)

        return handle

    with serving(silent) as server:

        async def cancel_midway() -> None:
            task = asyncio.create_task(
                run_probe(http_check(timeout="5s", interval="10s"), "127.0.0.1", server.port)
            )
            deadline = time.monotonic() + 5
            while not server.requests:  # midway: the request is sent, the answer awaited
                assert time.monotonic() < deadline and not task.done(), "the probe never sent its request"
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancel_midway())
        assert server.ended.wait(5)

    assert server.endings == ["eof"]


def test_http_probe_reaches_an_ipv6_backend_with_a_bracketed_host() -> None:
    with serving(answering(http_response("200 OK")), host="::1") as server:
        result = probe(http_check(), server.port, address="::1")

    assert (result.ok, result.reason) == (True, "HTTP 200")
    assert b"\r\nHost: [::1]\r\n" in server.requests[0]


def test_http_probe_sends_the_configured_host() -> None:
    with serving(answering(http_response("200 OK"))) as server:
        result = probe(http_check(host="shop.example"), server.port)

    assert result.ok
    assert b"\r\nHost: shop.example\r\n" in server.requests[0]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=node.example", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_probe_ignores_the_self_signed_certificate_and_sends_sni(
    certificate: tuple[Path, Path],
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _context: names.append(name)

    def tls(server: ScriptedServer) -> Handler:
        def handle(conn: socket.socket) -> None:
            with context.wrap_socket(conn, server_side=True) as secure:
                server.read_request(secure)
                secure.sendall(http_response("200 OK", b"ok"))

        return handle

    with serving(tls) as server:
        result = probe(http_check(tls=True, host="shop.example", expect_body="ok"), server.port)

    assert (result.ok, result.reason) == (True, "HTTP 200")
    assert names == ["shop.example"]


def test_https_probe_of_a_plain_http_server_reports_a_tls_error() -> None:
    def plain(server: ScriptedServer) -> Handler:
        def handle(conn: socket.socket) -> None:
            conn.sendall(http_response("200 OK"))  # at once, to the ClientHello
            server.wait_for_client_to_leave(conn)

        return handle

    with serving(plain) as server:
        result = probe(http_check(tls=True), server.port)

    assert not result.ok
    assert result.reason.startswith("TLS error: ")


# ---- k8s ------------------------------------------------------------------------------------------


def test_k8s_probe_takes_the_weight_from_kube_proxys_header_first() -> None:
    answer = http_response("200 OK", kube_proxy_body(5), ("X-Load-Balancing-Endpoint-Weight: 3",))
    with serving(answering(answer)) as server:
        result = probe(k8s_check(server.port), free_port())

    assert (result.ok, result.reason, result.weight) == (True, "HTTP 200, 3 local endpoints", 3)
    assert server.requests[0].startswith(b"GET /healthz HTTP/1.1\r\n")


def test_k8s_probe_takes_the_weight_from_the_json_body_without_the_header() -> None:
    with serving(answering(http_response("200 OK", kube_proxy_body(2)))) as server:
        result = probe(k8s_check(server.port), free_port())

    assert (result.ok, result.reason, result.weight) == (True, "HTTP 200, 2 local endpoints", 2)


def test_k8s_probe_without_a_count_keeps_the_configured_weight() -> None:
    answer = http_response("200 OK", b"{}", ("X-Load-Balancing-Endpoint-Weight: lots",))
    with serving(answering(answer)) as server:
        result = probe(k8s_check(server.port), free_port())

    assert (result.ok, result.reason, result.weight) == (True, "HTTP 200", None)


def test_k8s_probe_fails_on_503_with_no_local_endpoints() -> None:
    with serving(answering(http_response("503 Service Unavailable", kube_proxy_body(0)))) as server:
        result = probe(k8s_check(server.port), free_port())

    assert (result.ok, result.reason, result.weight) == (False, "HTTP 503, no local endpoints", None)


def test_k8s_probe_says_when_kube_proxy_itself_is_unhealthy() -> None:
    body = kube_proxy_body(2, healthy=False)
    with serving(answering(http_response("503 Service Unavailable", body))) as server:
        result = probe(k8s_check(server.port), free_port())

    assert (result.ok, result.reason) == (False, "HTTP 503 with 2 local endpoints, kube-proxy not healthy")


def test_k8s_probe_fails_on_200_with_zero_local_endpoints() -> None:
    with serving(answering(http_response("200 OK", kube_proxy_body(0)))) as server:
        result = probe(k8s_check(server.port), free_port())

    assert (result.ok, result.reason) == (False, "HTTP 200, no local endpoints")


# ---- a real nginx with `listen ... proxy_protocol` --------------------------------------------------


class InfoLogNginx(NginxBackend):
    """The lab's nginx logging at "info", which records each connection a client closed after its header."""

    def config(self) -> str:
        return super().config().replace("error.log warn;", "error.log info;")


@pytest.fixture
def proxy_nginx(tmp_path: Path) -> Iterator[InfoLogNginx]:
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.fail("nginx is not installed: run scripts/setup (installs Debian nginx-light)")
    node = InfoLogNginx(tmp_path, "node-a")
    node.start()
    try:
        yield node
    finally:
        node.stop()


def error_log(node: NginxBackend) -> str:
    path = node.dir / "error.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_with_proxy_protocol_accepts_the_tcp_probes_header(
    version: ProxyProtocolVersion, proxy_nginx: InfoLogNginx
) -> None:
    check = HealthCheck(type="tcp", send_proxy=True)
    results = [probe(check, proxy_nginx.port, address=host, proxy=version) for host in ("127.0.0.1", "::1")]

    assert [r.reason for r in results] == ["connected", "connected"]
    # "... while waiting for request": nginx has taken the header and waits for HTTP when the FIN comes.
    # (The lab's readiness wait adds one "... while reading PROXY protocol": it sends no header.)
    accepted = "client closed connection while waiting for request"
    deadline = time.monotonic() + 5
    while error_log(proxy_nginx).count(accepted) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    log = error_log(proxy_nginx)
    assert log.count(accepted) == 2, log
    assert "broken header" not in log


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_with_proxy_protocol_answers_the_http_probe(
    version: ProxyProtocolVersion, proxy_nginx: InfoLogNginx
) -> None:
    check = http_check(send_proxy=True, path="/", expect_body="node=node-a")
    results = [probe(check, proxy_nginx.port, address=host, proxy=version) for host in ("127.0.0.1", "::1")]

    assert [(r.ok, r.reason) for r in results] == [(True, "HTTP 200"), (True, "HTTP 200")]
    deadline = time.monotonic() + 5  # nginx writes the access log after it sent the answer
    while len(proxy_nginx.log_lines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy_nginx.log_lines() == ["127.0.0.1 /", "::1 /"]  # LOCAL/UNKNOWN: nginx used the socket's
    assert "broken header" not in error_log(proxy_nginx)


def test_nginx_with_proxy_protocol_rejects_a_probe_without_the_header(proxy_nginx: InfoLogNginx) -> None:
    result = probe(http_check(path="/"), proxy_nginx.port)

    assert not result.ok
    assert "broken header" in error_log(proxy_nginx)
