"""A shared-memory board: the health process writes the current health view, every worker reads it.

Why shared memory and not a pipe per worker. The health process must reach every worker within a
millisecond, including workers respawned after a crash and after the health process itself was
replaced. A board mapped by the supervisor before it forks anything is inherited by every child, so
there is nothing to hand over or reconnect: a new worker reads the current view at start, a new
health process simply writes the next one. Readers poll one 8-byte generation per loop iteration
(~0.1 us), so a busy worker sees a change within one iteration and an idle one before it handles
its next connection.

Layout: ``generation (u64) | length (u32) | crc32 (u32) | payload``. One writer. It marks the
generation odd while it writes and even when done. A reader copies the payload and checks the
generation again and the CRC. A torn read fails one of those checks and is retried on the next
iteration. The CRC guards CPUs with weaker store ordering than x86's, where the generation alone
could be seen before the payload.
"""

import mmap
import struct
import zlib

__all__ = ["BoardFullError", "HealthBoard"]

_HEADER = struct.Struct("<QII")
_GENERATION = struct.Struct("<Q")
DEFAULT_BOARD_SIZE = 4 << 20


class BoardFullError(ValueError):
    """The view does not fit the board; the message says how big it was."""


class HealthBoard:
    """An anonymous shared mapping; create it before forking so all children share it."""

    __slots__ = ("_map", "capacity")

    def __init__(self, size: int = DEFAULT_BOARD_SIZE) -> None:
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)
        self.capacity = size - _HEADER.size

    def publish(self, payload: bytes) -> int:
        """Write a new view (single writer); returns its generation."""
        if len(payload) > self.capacity:
            raise BoardFullError(
                f"health view of {len(payload)} bytes exceeds the board's {self.capacity} bytes"
            )
        current = self.generation()
        writing = current + 1 if current % 2 == 0 else current + 2
        _GENERATION.pack_into(self._map, 0, writing)  # odd: readers keep their view
        self._map[_HEADER.size : _HEADER.size + len(payload)] = payload
        _HEADER.pack_into(self._map, 0, writing + 1, len(payload), zlib.crc32(payload))
        return writing + 1

    @property
    def memory(self) -> mmap.mmap:
        """The shared block itself: the compiled core watches its first 8 bytes (the generation)."""
        return self._map

    def generation(self) -> int:
        """The generation now on the board (odd while a write is under way)."""
        generation: int = _GENERATION.unpack_from(self._map, 0)[0]
        return generation

    def read(self) -> tuple[int, bytes] | None:
        """The current (generation, payload), or None if nothing complete is there right now."""
        generation, length, crc = _HEADER.unpack_from(self._map, 0)
        if generation == 0 or generation % 2 or length > self.capacity:
            return None
        payload = self._map[_HEADER.size : _HEADER.size + length]
        if _GENERATION.unpack_from(self._map, 0)[0] != generation or zlib.crc32(payload) != crc:
            return None
        return generation, payload
