"""Run in the lab's client namespace: keep-alive connections that outlive a route change.

    python3 long_lived_client.py VIP COUNT

Opens COUNT connections to VIP:80 (one per client address 10.10.0.2...), sends one request on
each, prints ``ready``, waits for a line on stdin, sends one more request on each, and prints
``alive N of COUNT``: how many still answered.
"""

import socket
import sys


def ask(sock: socket.socket) -> None:
    """One HTTP/1.1 keep-alive request; returns once the whole answer (Content-Length) is in."""
    sock.sendall(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a whole answer")
        data += chunk
        head, found, body = data.partition(b"\r\n\r\n")
        if not found:
            continue
        lengths = [
            line.split(b":", 1)[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ]
        if lengths and len(body) >= int(lengths[0]):
            return


def main() -> int:
    vip, count = sys.argv[1], int(sys.argv[2])
    sockets = []
    for index in range(count):
        sock = socket.create_connection((vip, 80), timeout=3, source_address=(f"10.10.0.{2 + index}", 0))
        ask(sock)
        sockets.append(sock)
    print("ready", flush=True)
    sys.stdin.readline()
    alive = 0
    for sock in sockets:
        try:
            ask(sock)
            alive += 1
        except OSError:
            pass
    print(f"alive {alive} of {count}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
