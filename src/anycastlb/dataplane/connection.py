"""The life of one client connection, as a small state machine driven by epoll events.

::

    AWAIT_DATA ──first bytes (a whole ClientHello, or client_hello_wait)──► CONNECTING
    CONNECTING ──established──► (write PROXY header) ──► RELAY ──both ways done──► closed
    CONNECTING ──refused / timeout──► CONNECTING to the next Maglev candidate (bounded by retries)
    RELAY ──reset by the node before it answered, client sent nothing more──► CONNECTING (replay)

Why wait for the client's first bytes before connecting: an idle or slowloris client then never
holds a backend connection, and the PROXY v2 header can carry the TLS SNI (PP2_TYPE_AUTHORITY)
read from the ClientHello without terminating anything. HTTP and TLS clients speak first, so this
costs no round trip; listeners for server-first protocols set ``server_speaks_first`` and
connect at once. The first bytes are read (up to 16 KiB) and sent in the same ``send()`` as the
PROXY header: one TCP segment and two syscalls fewer than splicing them separately.

Why replay on an early reset (``retry_on_reset``): a node killed while our connect races its death
completes the handshake in the kernel, then resets the connection with our bytes unread. To the
client that is a failed new connection, exactly what retries exist to hide. As long as the node has
sent nothing and the client nothing beyond its first bytes, the connection is still replayable: a
reset (not a FIN) means the node had not read everything we sent, so the first bytes (a ClientHello,
a request line) go to the next candidate with the same PROXY header. The first byte either way
ends the replay window and frees the copy. A node that closes cleanly (FIN) before answering may
have read and acted on a request, so that is replayed only when the first bytes are a whole TLS
ClientHello: without its ServerHello no handshake happened and no application data was processed.

What the byte counters count: the client's and the node's payload, never the PROXY header. So
``anycastlb_bytes_total{direction="client_to_backend"}`` equals what clients sent and were relayed,
whatever the listener's PROXY version. The first bytes ride in the header's ``send()``, outside any
flow, so ``_connected`` counts them itself, once: a replay sends the same bytes again, but the
client sent them only once. When that first ``send()`` is short, the rest (maybe part of the
header) is primed into the flow, and ``harvest`` skips what is not to be counted (``skip_counting``).

Every method is called from the worker's event loop; none blocks. Errors on one side become a
reset (RST, via ``SO_LINGER`` 0) of the other, so neither peer mistakes a failure for a clean end.
"""

import errno
import select
import socket
import struct
import time
from typing import TYPE_CHECKING

from anycastlb.dataplane import tls_sni
from anycastlb.dataplane.flow import DONE, MORE, WANT_READ, WANT_WRITE, CopyFlow, Flow, SpliceFlow
from anycastlb.wire import proxy_protocol

if TYPE_CHECKING:
    from anycastlb.dataplane.backend_set import BackendTarget
    from anycastlb.dataplane.worker import ListenerRuntime, Worker

__all__ = ["AWAIT_DATA", "CLOSED", "CONNECTING", "RELAY", "Connection"]

AWAIT_DATA, CONNECTING, RELAY, CLOSED = range(4)

_IN = select.EPOLLIN | select.EPOLLRDHUP
_OUT = select.EPOLLOUT
_FAIL = select.EPOLLERR | select.EPOLLHUP
_PEER_CLOSED = select.EPOLLRDHUP | select.EPOLLHUP
# Both sockets are registered once, edge-triggered, for everything: no epoll_ctl after the two
# ADDs. Flows therefore read until EAGAIN (see flow.py) and events nobody waits for are ignored.
_ALL = _IN | _OUT | select.EPOLLET
_LINGER_RESET = struct.pack("ii", 1, 0)
_FIRST_BYTES = 16384
_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "refused",
    errno.ETIMEDOUT: "timeout",
    errno.EHOSTUNREACH: "unreachable",
    errno.ENETUNREACH: "unreachable",
    errno.ECONNRESET: "reset",
}


class Connection:
    """A client connection and, once chosen, its backend connection."""

    __slots__ = (
        "authority",
        "b2c",
        "backend",
        "c2b",
        "candidates",
        "client",
        "client_events",
        "conn_id",
        "connect_started",
        "deadline",
        "first_bytes",
        "first_counted",
        "last_active",
        "listener",
        "peer",
        "replayable",
        "skip_counting",
        "source_bucket",
        "state",
        "target",
        "worker",
    )

    def __init__(
        self,
        worker: "Worker",
        listener: "ListenerRuntime",
        client: socket.socket,
        peer: tuple[str, int],
        source_bucket: int,
        conn_id: int,
    ) -> None:
        self.worker = worker
        self.listener = listener
        self.client = client
        self.peer = peer
        self.source_bucket = source_bucket
        self.conn_id = conn_id
        self.backend: socket.socket | None = None
        self.target: BackendTarget | None = None
        self.candidates: list[BackendTarget] = []
        self.c2b: Flow | None = None
        self.b2c: Flow | None = None
        self.authority: bytes | None = None
        self.first_bytes = b""
        self.first_counted = False  # the first bytes are in the byte counters (a replay adds none)
        self.skip_counting = 0  # bytes primed into c2b that are not the client's (or counted already)
        self.replayable = False  # RELAY, and nothing moved yet either way: a reset may be replayed
        self.client_events = 0  # edges that came while no flow could read them: replayed on connect
        self.state = AWAIT_DATA
        self.last_active = worker.now
        self.deadline = 0.0
        self.connect_started = 0.0

    # ---- AWAIT_DATA -------------------------------------------------------------------------

    def start(self) -> None:
        """Called right after accept: often the first bytes are already here."""
        config = self.listener.config
        self.worker.register(self.client.fileno(), _ALL, self.on_client_event)
        if config.server_speaks_first:
            self._connect_next()
            return
        self._read_first_bytes()
        if self.state == AWAIT_DATA and not self.deadline:  # only clients slow to speak need a timer
            self._set_deadline(self.worker.now + min(config.first_data_timeout, config.idle_timeout))

    def _set_deadline(self, deadline: float) -> None:
        self.deadline = deadline
        self.worker.add_timer(deadline, self)

    def _read_first_bytes(self) -> None:
        try:
            chunk = self.client.recv(_FIRST_BYTES - len(self.first_bytes))
        except BlockingIOError:
            return
        except OSError:
            self.close(reset=True)
            return
        if not chunk:
            self.close()  # connected and left without a byte: no backend was ever bothered
            return
        head = self.first_bytes = self.first_bytes + chunk
        if len(head) == _FIRST_BYTES:
            # A full read can leave bytes in the receive queue whose edge is already spent: the
            # relay must read them without waiting for one (else a client with a full window
            # and an edge waiting for data stall each other; seen with 256 MiB uploads).
            self.client_events |= select.EPOLLIN
        config = self.listener.config
        if (
            config.proxy_protocol == "v2"
            and config.sni_authority
            and tls_sni.looks_like_tls_client_hello(head)
        ):
            name = tls_sni.peek_sni(head)
            if name is None and len(head) < _FIRST_BYTES and self._client_hello_incomplete(head):
                hello_deadline = self.worker.now + config.client_hello_wait
                if self.authority is None and (not self.deadline or hello_deadline < self.deadline):
                    self._set_deadline(hello_deadline)  # a partial ClientHello gets a shorter wait
                self.authority = b""  # marks "saw a partial ClientHello" for the timer
                return
            self.authority = name.encode("ascii") if name else None
        self._connect_next()

    @staticmethod
    def _client_hello_incomplete(head: bytes) -> bool:
        """A TLS record says how long it is: anything shorter means more segments are coming."""
        if len(head) < 5:
            return True
        return len(head) < 5 + int.from_bytes(head[3:5], "big")

    # ---- CONNECTING ---------------------------------------------------------------------------

    def _connect_next(self) -> None:
        listener = self.listener
        if self.state == AWAIT_DATA:
            self.state = CONNECTING
            if self.authority == b"":
                self.authority = None
            self.candidates = listener.backends.candidates(self.peer[0], listener.config.retries + 1)
            self.candidates.reverse()  # pop() from the end takes the best remaining candidate
            if not self.candidates:
                listener.stats.reject("no_backend")
                self.close(reset=True)
                return
        while self.candidates:
            target = self.candidates.pop()
            if self.target is not None:
                listener.stats.retries += 1  # every attempt after the first is a retry
            backend = socket.socket(target.family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            backend.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connect_started = time.monotonic()
            code = backend.connect_ex(target.sockaddr)
            self.target = target
            if code in (errno.EINPROGRESS, 0):
                self.backend = backend
                self._set_deadline(self.worker.now + listener.config.connect_timeout)
                self.worker.register(backend.fileno(), _ALL, self.on_backend_event)
                return
            backend.close()
            target.stats.connect_failed(reason := _CONNECT_ERRORS.get(code, "other"))
            self.worker.backend_failed(listener, target, reason)
        listener.stats.reject("backends_failed")
        self.close(reset=True)

    def _connect_failed(self, reason: str) -> None:
        assert self.backend is not None and self.target is not None
        self.target.stats.connect_failed(reason)
        self.worker.backend_failed(self.listener, self.target, reason)
        self.worker.forget(self.backend.fileno())
        self.backend.close()  # closing the only reference also removes it from epoll
        self.backend = None
        self._connect_next()

    def _connected(self) -> None:
        backend, target = self.backend, self.target
        assert backend is not None and target is not None
        target.stats.connected(time.monotonic() - self.connect_started)
        self.deadline = 0.0
        header = self._proxy_header()
        payload = header + self.first_bytes
        sent = 0
        if payload:
            try:
                sent = backend.send(payload)
            except BlockingIOError:
                pass
            except OSError:
                target.stats.active -= 1  # nothing reached the node: try the next one
                self._connect_failed("reset")
                return
        if self.first_counted:  # a replay: the client sent these bytes once, they were counted
            self.skip_counting = len(payload) - sent
        else:
            self.first_counted = True
            self.listener.stats.bytes_in += max(0, sent - len(header))
            self.skip_counting = max(0, len(header) - sent)
        self.state = RELAY
        worker = self.worker
        if worker.relay == "splice":
            self.c2b = SpliceFlow(self.client, backend, worker.pipes)
            self.b2c = SpliceFlow(backend, self.client, worker.pipes)
        else:
            self.c2b = CopyFlow(self.client, backend, worker.scratch)
            self.b2c = CopyFlow(backend, self.client, worker.scratch)
        self.replayable = (
            self.listener.config.retry_on_reset and sent == len(payload) and bool(self.candidates)
        )
        if not self.replayable:
            self.first_bytes = b""
        if sent < len(payload):
            self.c2b.prime(payload[sent:])  # rare: the first write did not fit the send buffer
            self.pump(self.c2b)
        elif self.client_events & (_IN | _PEER_CLOSED):
            self.c2b.peer_closed = bool(self.client_events & _PEER_CLOSED)
            self.pump(self.c2b)  # bytes (or a FIN) came while we were connecting; their edge is gone

    def _proxy_header(self) -> bytes:
        config = self.listener.config
        if config.proxy_protocol == "none":
            return b""
        destination = self.listener.destination or self.client.getsockname()
        if config.proxy_protocol == "v1":
            return proxy_protocol.encode_v1(self.peer, destination, self.listener.family)
        tlvs = [proxy_protocol.unique_id_tlv(self.conn_id)]
        if self.authority:
            tlvs.append((proxy_protocol.PP2_TYPE_AUTHORITY, self.authority))
        return proxy_protocol.encode_v2(self.peer, destination, self.listener.family, tlvs=tlvs)

    # ---- events -------------------------------------------------------------------------------

    def on_client_event(self, events: int) -> None:
        self.last_active = self.worker.now
        state = self.state
        if state == RELAY:
            assert self.c2b is not None and self.b2c is not None
            self._relay_event(events, reading=self.c2b, writing=self.b2c)
        elif state == AWAIT_DATA:
            self.client_events |= events & _PEER_CLOSED  # a FIN behind the first bytes raises no new edge
            if events & select.EPOLLERR:
                self.close(reset=True)
            elif events & _IN:
                self._read_first_bytes()
        elif state == CONNECTING:
            if events & select.EPOLLERR:
                self.close(reset=True)  # the client gave up while we were connecting
            else:
                self.client_events |= events

    def on_backend_event(self, events: int) -> None:
        self.last_active = self.worker.now
        state = self.state
        if state == RELAY:
            assert self.c2b is not None and self.b2c is not None
            self._relay_event(events, reading=self.b2c, writing=self.c2b)
        elif state == CONNECTING:
            assert self.backend is not None
            if events & _FAIL:
                code = self.backend.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                self._connect_failed(_CONNECT_ERRORS.get(code, "other"))
            elif events & _OUT:
                self._connected()

    def _relay_event(self, events: int, reading: Flow, writing: Flow) -> None:
        """An edge on one socket: ``reading`` takes bytes from it, ``writing`` puts bytes into it."""
        if events & _PEER_CLOSED:
            reading.peer_closed = True
        if events & _FAIL:
            self._on_failure_event(reading, writing)
            return
        if events & _IN and reading.state != WANT_WRITE:
            self.pump(reading)  # a flow waiting for its destination is pumped by that one's OUT edge
        if events & _OUT and writing.state == WANT_WRITE and self.state == RELAY:
            self.pump(writing)

    def _on_failure_event(self, reading: Flow, writing: Flow) -> None:
        """ERR/HUP on a socket: read what is left (EOF or the error), then give up on writing to it."""
        if not reading.done:
            self.pump(reading)
        if self.state == RELAY and not writing.done:
            self.close(reset=True)

    def on_timer(self, deadline: float) -> None:
        """A timer fired; stale ones (the deadline moved on) are ignored."""
        if deadline != self.deadline or self.state >= RELAY:
            return
        if self.state == AWAIT_DATA:
            if self.authority == b"":
                self._connect_next()  # partial ClientHello: go without SNI rather than wait longer
            else:
                self.listener.stats.idle_closed += 1
                self.close()
        else:
            self._connect_failed("timeout")

    # ---- RELAY --------------------------------------------------------------------------------

    def pump(self, flow: Flow) -> None:
        """Move a flow's bytes; also the worker's second turn for a flow that returned MORE."""
        if flow.done:
            return
        try:
            result = flow.pump()
        except OSError:
            if self.replayable and flow is self.b2c:
                self._replay()
            else:
                self.close(reset=True)
            return
        if self.replayable and (flow is self.c2b or flow.moved):
            self.replayable = False  # the client spoke again or the node answered: no replay any more
            self.first_bytes = b""
        if (
            result in (WANT_READ, MORE)
            and type(flow) is CopyFlow
            and flow.bulk
            and self.worker.relay == "auto"
        ):
            flow = self._to_splice(flow)
        if result == MORE:
            self.worker.pump_later(self, flow)  # its turn is over; others first, then more bytes
            return
        if result == DONE and not flow.done:
            if self.replayable and flow is self.b2c and self._is_whole_client_hello():
                self._replay()  # closed before its ServerHello: no handshake, nothing processed
                return
            flow.done = True
            assert self.c2b is not None and self.b2c is not None
            if self.c2b.done and self.b2c.done:
                self.close()  # close() sends the FIN: no separate shutdown needed
                return
            try:
                flow.dst.shutdown(socket.SHUT_WR)  # half-close: the other direction stays open
            except OSError:
                pass

    def _is_whole_client_hello(self) -> bool:
        head = self.first_bytes
        return tls_sni.looks_like_tls_client_hello(head) and not self._client_hello_incomplete(head)

    def _replay(self) -> None:
        """The node reset us before answering: send the first bytes to the next candidate."""
        assert self.target is not None and self.c2b is not None and self.b2c is not None
        self.target.stats.active -= 1
        self.c2b.release()
        self.b2c.release()
        self.c2b = self.b2c = None
        self.replayable = False
        self.client_events = 0
        self.state = CONNECTING
        self._connect_failed("reset")

    def _to_splice(self, flow: CopyFlow) -> Flow:
        """A flow turned out to carry bulk data: relay it with zero copy from now on."""
        spliced = SpliceFlow(flow.src, flow.dst, self.worker.pipes)
        spliced.moved = flow.moved
        spliced.peer_closed = flow.peer_closed
        if flow is self.c2b:
            self.c2b = spliced
        else:
            self.b2c = spliced
        return spliced

    def harvest(self) -> None:
        """Move byte counts into the listener's stats (called on close and once a second)."""
        stats = self.listener.stats
        if self.c2b is not None:
            moved = self.c2b.moved
            if self.skip_counting:  # the rest of a short first send comes out of the flow first
                skipped = min(moved, self.skip_counting)
                self.skip_counting -= skipped
                moved -= skipped
            stats.bytes_in += moved
            self.c2b.moved = 0
        if self.b2c is not None:
            stats.bytes_out += self.b2c.moved
            self.b2c.moved = 0

    def close(self, *, reset: bool = False) -> None:
        """Close both sides; with ``reset`` send RST so a failure is never mistaken for a clean end."""
        if self.state == CLOSED:
            return
        was_relaying = self.state == RELAY
        self.state = CLOSED
        self.harvest()
        for flow in (self.c2b, self.b2c):
            if flow is not None:
                flow.release()
        for sock in (self.client, self.backend):
            if sock is None:
                continue
            if reset:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                except OSError:
                    pass
            self.worker.forget(sock.fileno())
            sock.close()  # closing the only reference also removes it from epoll
        if was_relaying and self.target is not None:
            self.target.stats.active -= 1
        self.worker.connection_closed(self)
