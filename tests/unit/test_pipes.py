"""The pipe pool reuses drained pipes and enlarges them for big splices."""

import fcntl
import os

from anycastlb.dataplane.pipes import PipePool

F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def test_pipes_are_enlarged_to_the_configured_size() -> None:
    pool = PipePool(size=256 * 1024)
    pipe = pool.take()

    assert fcntl.fcntl(pipe[1], F_GETPIPE_SZ) == 256 * 1024
    pool.discard(pipe)


def test_a_given_back_pipe_is_reused_and_the_pool_is_bounded() -> None:
    pool = PipePool(size=65536, keep=1)
    first, second = pool.take(), pool.take()
    pool.give_back(first)
    pool.give_back(second)  # over `keep`: closed, not kept

    assert pool.take() == first
    try:
        os.fstat(second[0])
        closed = False
    except OSError:
        closed = True
    assert closed
    pool.close()
