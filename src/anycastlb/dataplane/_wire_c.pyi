"""Types of the compiled module's Python-visible part (see _wire_c.pyx; mypy cannot read Cython).

The data plane uses the C functions of _wire_c.pxd; these wrappers exist for tests and benchmarks.
"""

from anycastlb.wire.proxy_protocol import SocketAddress

_Bytes = bytes | bytearray | memoryview

SOURCE_SHA256: str
PROXY_HEADER_MAX: int
SNI_MAX: int
HELLO_NOT_TLS: int
HELLO_INCOMPLETE: int
HELLO_NO_SNI: int
HELLO_SNI: int

def encode_v1(
    source: SocketAddress, destination: SocketAddress, family: int, *, cap: int | None = None
) -> bytes: ...
def encode_v2(
    source: SocketAddress,
    destination: SocketAddress,
    family: int,
    unique_id: int,
    authority: _Bytes,
    *,
    cap: int | None = None,
) -> bytes: ...
def peek_hello(data: _Bytes) -> tuple[int, bytes | None]: ...
