"""The attacker: one source address opening connections as fast as one process can.

Run as a child process (``python3 bench/harness/flood_client.py PORT SOURCE SECONDS``); prints one
JSON line of counts at the end. A non-blocking epoll loop keeps ``--concurrency`` connections in
flight, each sending ``GET /small`` at once and reading until the end or a reset (an HTTP flood: a
proxy that lets it through loads its backend too), then opens the next. ``IP_BIND_ADDRESS_NO_PORT``
lets the kernel pick the source port per destination, so ports last as long as the kernel allows.
"""

from __future__ import annotations

import argparse
import errno
import json
import select
import socket
import time

REQUEST = b"GET /small HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
_IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h
_WAITING = select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP
_READING = select.EPOLLIN | select.EPOLLRDHUP


class Flood:
    def __init__(self, port: int, source: str) -> None:
        self.port, self.source = port, source
        self.epoll = select.epoll()
        self.open: dict[int, tuple[socket.socket, bytearray]] = {}
        self.counts = {"attempts": 0, "served": 0, "reset": 0, "closed": 0, "failed": 0}

    def start_one(self) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        self.counts["attempts"] += 1
        try:
            sock.bind((self.source, 0))
            code = sock.connect_ex(("127.0.0.1", self.port))
        except OSError:
            code = -1
        if code not in (0, errno.EINPROGRESS):
            self.counts["failed"] += 1
            sock.close()
            return
        self.epoll.register(sock.fileno(), _WAITING)
        self.open[sock.fileno()] = (sock, bytearray())

    def finish(self, fd: int, outcome: str) -> None:
        sock, _ = self.open.pop(fd)
        self.epoll.unregister(fd)
        sock.close()
        self.counts[outcome] += 1

    def on_event(self, fd: int, events: int) -> None:
        sock, answer = self.open[fd]
        try:
            if events & select.EPOLLOUT and not answer:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    self.finish(fd, "reset" if error == errno.ECONNRESET else "failed")
                    return
                sock.send(REQUEST)
                answer.extend(b" ")  # marks "request sent"
                self.epoll.modify(fd, _READING)
                return
            while chunk := sock.recv(65536):
                answer.extend(chunk)
        except BlockingIOError:
            return
        except (ConnectionResetError, BrokenPipeError):
            self.finish(fd, "reset")
            return
        except OSError as error:
            self.finish(fd, "reset" if error.errno == errno.ECONNRESET else "failed")
            return
        self.finish(fd, "served" if answer.startswith(b" HTTP/1.1 200") else "closed")

    def run(self, seconds: float, concurrency: int) -> dict[str, int]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            while len(self.open) < concurrency:
                self.start_one()
            for fd, events in self.epoll.poll(0.05):
                self.on_event(fd, events)
        return self.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("port", type=int)
    parser.add_argument("source")
    parser.add_argument("seconds", type=float)
    parser.add_argument("--concurrency", type=int, default=64)
    settings = parser.parse_args()
    counts = Flood(settings.port, settings.source).run(settings.seconds, settings.concurrency)
    print(json.dumps({**counts, "seconds": settings.seconds}))


if __name__ == "__main__":
    main()
