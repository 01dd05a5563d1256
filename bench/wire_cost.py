"""Cost per call of the PROXY header and the ClientHello peek: compiled (_wire_c) vs today's Python.

    python3 bench/wire_cost.py [--calls 200000] [--rounds 5]

The compiled side is what the compiled loop will run: ``bench/wire_cost_loop.pyx`` (compiled here,
at run time, into a temporary directory) calls ``proxy_v1``/``proxy_v2``/``peek_hello`` through
``cimport`` in a ``nogil`` loop on sockaddrs. The Python side is what the Python worker ran:
``encode_v1``, ``encode_v2`` with the UNIQUE_ID and AUTHORITY TLVs (``_proxy_header``), and the
first-bytes decision of ``_read_first_bytes`` (``looks_like_tls_client_hello``, ``peek_sni``,
``_client_hello_incomplete``). Both sides are checked to give the same bytes and the same decision
before anything is timed. Rounds interleave the two; prints the median and the spread in ns per call.
A micro benchmark: it says what a header and a peek cost, not what a connection costs.
"""

import argparse
import contextlib
import importlib
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import ModuleType

import anycastlb
from anycastlb.dataplane import _wire_c, native, tls_sni
from anycastlb.wire import proxy_protocol as pp

V4 = ("198.51.100.7", 50123), ("192.0.2.10", 443)
V6 = ("2001:db8:1:2::7", 50123, 0, 0), ("2001:db8::10", 443, 0, 0)
AUTHORITY = b"shop.example.com"
UNIQUE_ID = 0x0000_1234_0000_0001


def compiled_loop(build_dir: Path) -> ModuleType:
    """bench/wire_cost_loop.pyx, compiled against the _wire_c.pxd beside the imported anycastlb."""
    import pyximport  # type: ignore[import-untyped]  # noqa: PLC0415 - only needed here, at run time

    native.check_fresh(_wire_c, Path(native.__file__).with_name("_wire_c.pyx"))
    sys.path.insert(0, str(Path(anycastlb.__file__).parents[1]))  # Cython finds .pxd files on sys.path
    pyximport.install(build_dir=str(build_dir), language_level=3)
    return importlib.import_module("bench.wire_cost_loop")


def client_hello(server_name: str) -> bytes:
    """The first flight of Python's TLS client (memory BIOs, no sockets)."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def split(hello: bytes, cut: int) -> bytes:
    """The same ClientHello in two handshake records, cut ``cut`` bytes into the message."""
    message = hello[5:]
    head = hello[:3]
    return (
        head + len(message[:cut]).to_bytes(2, "big") + message[:cut]
        + head + len(message[cut:]).to_bytes(2, "big") + message[cut:]
    )  # fmt: skip


def python_decision(data: bytes) -> tuple[int, bytes | None]:
    """The Python worker's first-bytes decision (v2 + sni_authority), in the _wire_c HELLO_* numbers."""
    if not tls_sni.looks_like_tls_client_hello(data):
        return 0, None
    name = tls_sni.peek_sni(data)
    if name is not None:
        return 3, name.encode("ascii")
    if len(data) < 16384 and (len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big")):
        return 1, None
    return 2, None


def python_v2(source: pp.SocketAddress, destination: pp.SocketAddress, family: int) -> bytes:
    tlvs = [pp.unique_id_tlv(UNIQUE_ID), (pp.PP2_TYPE_AUTHORITY, AUTHORITY)]  # as the Python worker built it
    return pp.encode_v2(source, destination, family, tlvs=tlvs)


Case = tuple[Callable[[int], float], Callable[[int], float]]  # (compiled, python): ns per call


def time_python(calls: int, run: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        run()
    return (time.perf_counter_ns() - started) / calls


def time_compiled(calls: int, run: Callable[[int], tuple[float, object]]) -> float:
    return float(run(calls)[0])


def cases(loop: ModuleType) -> dict[str, Case]:
    found: dict[str, Case] = {}
    for label, family, (source, destination) in (("v4", socket.AF_INET, V4), ("v6", socket.AF_INET6, V6)):
        src, dst = socket.inet_pton(family, source[0]), socket.inet_pton(family, destination[0])
        for version in (1, 2):
            encode = pp.encode_v1 if version == 1 else python_v2
            compiled = partial(
                loop.time_proxy, version, family, src, source[1], dst, destination[1], UNIQUE_ID, AUTHORITY
            )
            python = partial(encode, source, destination, family)
            assert compiled(1)[1] == python(), (compiled(1)[1], python())
            found[f"proxy v{version} {label}"] = (
                partial(time_compiled, run=compiled),
                partial(time_python, run=python),
            )
    hello = client_hello("shop.example.com")
    for label, data in (
        ("peek ClientHello", hello),
        ("peek 2 records", split(hello, 200)),
        ("peek half hello", hello[:200]),
        ("peek HTTP", b"GET / HTTP/1.1\r\nHost: shop.example.com\r\n\r\n"),
    ):
        peek = partial(loop.time_peek, data)
        decide = partial(python_decision, data)
        assert peek(1)[1] == decide(), (label, peek(1)[1], decide())
        found[label] = partial(time_compiled, run=peek), partial(time_python, run=decide)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wire_cost.") as build_dir:
        suite = cases(compiled_loop(Path(build_dir)))
        results: dict[tuple[str, int], list[float]] = {}
        for _ in range(options.rounds):
            for name, implementations in suite.items():
                for which, run in enumerate(implementations):
                    results.setdefault((name, which), []).append(run(options.calls))
    print(f"ns per call, median of {options.rounds} rounds of {options.calls} (min-max)")
    for name in suite:
        row = [f"{name:17}"]
        for which, label in enumerate(("compiled", "python")):
            samples = results[name, which]
            row.append(f"{label} {statistics.median(samples):7.1f} ({min(samples):.1f}-{max(samples):.1f})")
        compiled, python = (statistics.median(results[name, which]) for which in (0, 1))
        row.append(f"python/compiled {python / compiled:.0f}x")
        print("  ".join(row))


if __name__ == "__main__":
    main()
