"""Types of the compiled module (see _maglev_c.pyx; mypy cannot read Cython)."""

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from anycastlb.dataplane.maglev import MaglevTable

SOURCE_SHA256: str

class CompiledMaglev:
    def __init__(self, table: MaglevTable) -> None: ...
    @property
    def size(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def owners(self) -> int: ...
    def candidates(self, key: bytes, limit: int, skip: AbstractSet[int] = ...) -> list[int]: ...

def client_key_of(host: str, port: int) -> bytes: ...
def slot_of(key: bytes, size: int) -> int: ...
def mix_of(crc: int) -> int: ...
def time_pick(
    table: CompiledMaglev,
    hosts: Sequence[str],
    limit: int,
    skip: AbstractSet[int],
    rounds: int,
    with_key: bool,
) -> float: ...
