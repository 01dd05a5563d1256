"""The lab's client: run inside the client namespace, one new TCP connection per request to the VIP.

    ip netns exec alb-client python3 -m anycastlb.lab.probe_client 198.18.0.10 80 \\
        --source 10.10.0.2 --source 10.10.0.3 --pop 10.30.0.11=fra --pop 10.30.0.12=par [--count N]

Each request is ``GET /`` with ``Connection: close`` from the next source address in turn; one JSON
line per attempt goes to stdout (:class:`anycastlb.lab.timeline.Attempt`). It runs until ``--count``
attempts are made, or until SIGTERM or SIGINT.
"""

import argparse
import signal
import socket
import sys
import time
from types import FrameType

from anycastlb.lab.timeline import Attempt, parse_answer

__all__ = ["main", "request", "request_bytes"]


def request_bytes(pad: int = 0) -> bytes:
    """The request; ``pad`` adds an ``X-Pad`` header of that many bytes (a larger first flight)."""
    padding = b"X-Pad: " + b"p" * pad + b"\r\n" if pad else b""
    return b"GET / HTTP/1.1\r\nHost: lab\r\n" + padding + b"Connection: close\r\n\r\n"


def request(vip: str, port: int, source: str, timeout: float, pops: dict[str, str], pad: int = 0) -> Attempt:
    """One request (:func:`request_bytes`) on a new connection from ``source``."""
    started = time.monotonic()
    try:
        with socket.create_connection((vip, port), timeout=timeout, source_address=(source, 0)) as sock:
            sock.sendall(request_bytes(pad))
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError as error:
        return Attempt(started, time.monotonic(), source, error=f"{type(error).__name__}: {error}")
    text = answer.decode(errors="replace")
    status, _, body = text.partition("\r\n\r\n")
    fields = parse_answer(body)
    if " 200 " not in status.split("\r\n", 1)[0] or "node" not in fields:
        return Attempt(started, time.monotonic(), source, error=f"bad answer: {text[:80]!r}")
    via = fields.get("via", "")
    return Attempt(
        started, time.monotonic(), source, fields["node"], pops.get(via, via or "?"), fields.get("client")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probe_client", description=__doc__.split("\n\n")[0])
    parser.add_argument("vip")
    parser.add_argument("port", type=int)
    parser.add_argument("--source", action="append", required=True, help="client address (repeat)")
    parser.add_argument("--pop", action="append", default=[], help="ADDRESS=NAME of a PoP's cluster address")
    parser.add_argument("--count", type=int, default=0, help="stop after N attempts (0: until SIGTERM)")
    parser.add_argument("--pause", type=float, default=0.002, help="seconds between requests")
    parser.add_argument("--timeout", type=float, default=2.0, help="connect and read timeout")
    parser.add_argument("--pad", type=int, default=0, help="bytes of an extra X-Pad header in each request")
    args = parser.parse_args(argv)
    pops = dict(item.split("=", 1) for item in args.pop)
    stop = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    turn = 0
    while not stop and (args.count == 0 or turn < args.count):
        source = args.source[turn % len(args.source)]
        attempt = request(args.vip, args.port, source, args.timeout, pops, args.pad)
        turn += 1
        sys.stdout.write(attempt.to_json() + "\n")
        sys.stdout.flush()
        if args.pause:
            time.sleep(args.pause)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
