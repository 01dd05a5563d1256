"""A pool of kernel pipes for zero-copy relaying with ``splice(2)``.

Bytes move socket → pipe → socket without entering user space. A pipe is only held while bytes
are in flight: a direction that drains its pipe hands it straight back, so 10,000 idle
connections hold no pipes at all (HAProxy does the same). Pipes are enlarged with
``F_SETPIPE_SZ`` so one ``splice`` moves up to ``pipe_size`` bytes, which is what makes a single
Python process keep up with tens of Gbit/s: the per-byte cost is in the kernel, the per-call cost
in Python is amortised over a megabyte.
"""

import fcntl
import os

__all__ = ["PipePool"]

_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class PipePool:
    """Hands out ``(read_fd, write_fd)`` pairs and keeps up to ``keep`` spare ones for reuse."""

    __slots__ = ("_spare", "keep", "size")

    def __init__(self, size: int, keep: int = 256) -> None:
        self.size = size
        self.keep = keep
        self._spare: list[tuple[int, int]] = []

    def take(self) -> tuple[int, int]:
        """Return an empty pipe; creates one when the pool is empty."""
        if self._spare:
            return self._spare.pop()
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(write_fd, _F_SETPIPE_SZ, self.size)
        except OSError:
            # Over /proc/sys/fs/pipe-max-size or the user's pipe quota: a default-sized pipe still works.
            pass
        return read_fd, write_fd

    def give_back(self, pipe: tuple[int, int]) -> None:
        """Return a pipe that holds no bytes (the caller guarantees it drained it)."""
        if len(self._spare) < self.keep:
            self._spare.append(pipe)
        else:
            self.discard(pipe)

    @staticmethod
    def discard(pipe: tuple[int, int]) -> None:
        """Close a pipe that may still hold bytes (its connection died mid-transfer)."""
        os.close(pipe[0])
        os.close(pipe[1])

    def close(self) -> None:
        """Close every spare pipe."""
        for pipe in self._spare:
            self.discard(pipe)
        self._spare.clear()
