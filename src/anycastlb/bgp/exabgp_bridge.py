"""The API process ExaBGP starts: it joins ExaBGP's stdin/stdout to the edge agent's socket.

ExaBGP talks to "processes" it starts itself, over their stdin and stdout. The edge agent is not its
child, so this tiny process stands between them: lines from the agent's Unix socket go to stdout
(commands for ExaBGP), lines from stdin (acks and session changes) go to the socket. It exits when
either side closes, and ExaBGP restarts it; the agent then announces everything again.

    python3 -m anycastlb.bgp.exabgp_bridge /path/to/api.sock
"""

import os
import selectors
import socket
import sys
import time

__all__ = ["main"]

_CONNECT_ATTEMPTS = 50
_CONNECT_PAUSE = 0.1


def _connect(path: str) -> socket.socket:
    """The agent listens before it starts ExaBGP, but give it a moment after a restart."""
    for _ in range(_CONNECT_ATTEMPTS):
        try:
            return _try_connect(path)
        except OSError:
            time.sleep(_CONNECT_PAUSE)
    raise SystemExit(f"exabgp_bridge: cannot connect to the edge agent at {path}")


def _try_connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python3 -m anycastlb.bgp.exabgp_bridge SOCKET", file=sys.stderr)
        return 2
    agent = _connect(sys.argv[1])
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    selector = selectors.DefaultSelector()
    selector.register(agent, selectors.EVENT_READ, "agent")
    selector.register(stdin, selectors.EVENT_READ, "exabgp")
    while True:
        for key, _ in selector.select():
            if key.data == "agent":
                data = agent.recv(65536)
                if not data:
                    return 0
                os.write(stdout, data)  # blocking write: ExaBGP reads its processes continuously
            else:
                data = os.read(stdin, 65536)
                if not data:
                    return 0
                agent.sendall(data)


if __name__ == "__main__":
    raise SystemExit(main())
