"""Length-prefixed messages on a pipe: how the supervisor hands a config to its children."""

import os
import struct

__all__ = ["read_message", "write_message"]

_LENGTH = struct.Struct("!I")


def write_message(fd: int, payload: bytes) -> None:
    """Send one length-prefixed message on a blocking pipe."""
    os.write(fd, _LENGTH.pack(len(payload)) + payload)


def read_message(buffer: bytearray) -> bytes | None:
    """Take one complete message off the front of ``buffer``, if it holds one."""
    if len(buffer) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack_from(buffer)
    if len(buffer) < _LENGTH.size + length:
        return None
    payload = bytes(buffer[_LENGTH.size : _LENGTH.size + length])
    del buffer[: _LENGTH.size + length]
    return payload
