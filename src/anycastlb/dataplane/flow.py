"""One direction of a relayed connection: bytes from ``src`` to ``dst``.

This is the per-byte path. Two implementations with one contract:

* :class:`SpliceFlow` moves bytes socket → pipe → socket with ``splice(2)``; they never enter
  Python. A pipe is taken from the pool only while bytes are in flight.
* :class:`CopyFlow` uses ``recv_into`` / ``send`` on a buffer, for kernels or sockets where
  splice is unavailable, and as the start of every flow in ``relay: auto``: for a request or
  a response of a few KiB one copy costs the kernel less than two splices and a pipe. A copy flow
  that fills its whole buffer in one read is carrying bulk data; it sets ``bulk`` and the
  connection swaps it for a splice flow once its buffer is empty (see ``Connection.pump``).

``pump()`` moves what it can without blocking and returns what the flow waits for next:
``WANT_READ`` (src readable), ``WANT_WRITE`` (dst writable), ``DONE`` (src reached EOF and
everything was delivered; the caller then half-closes dst) or ``MORE`` (it stopped after its
share of work with bytes still waiting; the worker pumps it again after other connections had a
turn). The sockets are edge-triggered, so a flow only returns ``WANT_READ`` when the kernel said
EAGAIN or a copy read came back short (the receive queue is then empty). Socket errors propagate
as ``OSError``: the connection turns them into a reset of the other side.
"""

import os
import socket

from anycastlb.dataplane.pipes import PipePool

__all__ = ["DONE", "MORE", "WANT_READ", "WANT_WRITE", "CopyFlow", "Flow", "SpliceFlow"]

WANT_READ = 1
WANT_WRITE = 2
DONE = 3
MORE = 4

_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_MAX_ROUNDS = 4  # bound the work per wake-up so one fast connection cannot starve the others


class Flow:
    """State shared by both implementations."""

    __slots__ = ("done", "dst", "moved", "peer_closed", "src", "state")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src = src
        self.dst = dst
        self.moved = 0  # bytes delivered since the last stats harvest
        self.state = WANT_READ
        self.done = False
        # src's peer sent FIN (epoll said RDHUP/HUP): a short read no longer means "nothing left",
        # because the EOF behind the last bytes raises no new edge.
        self.peer_closed = False

    def pump(self) -> int:
        raise NotImplementedError

    def prime(self, data: bytes) -> None:
        """Queue bytes that must reach dst before anything read from src (a partly sent first write)."""
        raise NotImplementedError

    def release(self) -> None:
        """Give back buffers or pipes when the connection closes."""


class SpliceFlow(Flow):
    """Zero-copy relay through a pooled pipe."""

    __slots__ = ("_dst_fd", "_pending", "_pipe", "_pool", "_src_fd")

    def __init__(self, src: socket.socket, dst: socket.socket, pool: PipePool) -> None:
        super().__init__(src, dst)
        self._src_fd = src.fileno()
        self._dst_fd = dst.fileno()
        self._pool = pool
        self._pipe: tuple[int, int] | None = None
        self._pending = 0

    def pump(self) -> int:
        splice = os.splice
        pipe = self._pipe if self._pipe is not None else self._pool.take()
        pending = self._pending
        chunk = self._pool.size
        moved = 0
        state = MORE
        for _ in range(_MAX_ROUNDS):
            if not pending:
                try:
                    pending = splice(self._src_fd, pipe[1], chunk, flags=_SPLICE_FLAGS)
                except BlockingIOError:
                    state = WANT_READ
                    break
                if not pending:
                    state = DONE
                    break
            # No "short read means empty" shortcut here: a splice also stops short when the pipe
            # runs out of slots, and with edge-triggered epoll nobody would tell us about the rest.
            try:
                while pending:
                    sent = splice(pipe[0], self._dst_fd, pending, flags=_SPLICE_FLAGS)
                    pending -= sent
                    moved += sent
            except BlockingIOError:
                state = WANT_WRITE
                break
            except BaseException:
                self._pipe, self._pending = pipe, pending
                raise
        if pending:
            state = WANT_WRITE
            self._pipe = pipe
        else:
            self._pool.give_back(pipe)  # idle connections hold no pipe
            self._pipe = None
        self._pending = pending
        self.moved += moved
        self.state = state
        return state

    def prime(self, data: bytes) -> None:
        pipe = self._pipe if self._pipe is not None else self._pool.take()
        written = os.write(pipe[1], data)  # a fresh pipe holds >= 64 KiB; callers send at most 16 KiB
        self._pipe, self._pending = pipe, self._pending + written
        self.state = WANT_WRITE

    def release(self) -> None:
        if self._pipe is not None:
            if self._pending:
                self._pool.discard(self._pipe)
            else:
                self._pool.give_back(self._pipe)
            self._pipe = None


class CopyFlow(Flow):
    """Relay through user space: ``recv_into`` a scratch buffer shared by the whole worker, ``send``.

    Almost always everything read is sent at once, so one buffer serves every connection of the
    worker; only bytes the destination cannot take yet are copied aside into this flow.
    """

    __slots__ = ("_left", "_scratch", "bulk")

    def __init__(self, src: socket.socket, dst: socket.socket, scratch: memoryview) -> None:
        super().__init__(src, dst)
        self._scratch = scratch
        self._left: memoryview | None = None  # bytes read but not yet accepted by dst
        self.bulk = False  # a read filled the whole buffer: splice would do better from here on

    def pump(self) -> int:
        moved = 0
        left = self._left
        if left is not None:
            try:
                while left:
                    sent = self.dst.send(left)
                    left = left[sent:]
                    moved += sent
            except BlockingIOError:
                self._left = left
                self.moved += moved
                self.state = WANT_WRITE
                return WANT_WRITE
            self._left = None
        scratch = self._scratch
        size = len(scratch)
        state = MORE
        for _ in range(_MAX_ROUNDS):
            try:
                count = self.src.recv_into(scratch)
            except BlockingIOError:
                state = WANT_READ
                break
            if not count:
                state = DONE
                break
            sent = 0
            try:
                while sent < count:
                    sent += self.dst.send(scratch[sent:count])
            except BlockingIOError:
                self._left = memoryview(bytes(scratch[sent:count]))
                state = WANT_WRITE
                break
            finally:
                moved += sent
            if count < size and not self.peer_closed:
                state = WANT_READ  # a short TCP read emptied the receive queue; new bytes raise an edge
                break
            self.bulk = True
        self.moved += moved
        self.state = state
        return state

    def prime(self, data: bytes) -> None:
        self._left = memoryview(data)
        self.state = WANT_WRITE

    def release(self) -> None:
        self._left = None
