"""Length-prefixed messages on a pipe: how the supervisor hands a config to its children."""

import os
import struct

__all__ = ["ConfigPipeReader", "read_message", "write_message"]

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


class ConfigPipeReader:
    """The reading end of a child's control pipe (non-blocking): whole messages, or EOF."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def read(self) -> list[bytes] | None:
        """The complete messages that arrived; None once the writer (the supervisor) is gone."""
        try:
            chunk = os.read(self.fd, 1 << 20)
        except BlockingIOError:
            return []
        if not chunk:
            return None
        self._buffer += chunk
        messages = []
        while (message := read_message(self._buffer)) is not None:
            messages.append(message)
        return messages
