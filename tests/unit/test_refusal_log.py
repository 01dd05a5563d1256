"""Refusals are logged at a bounded rate: never one line per refused connection."""

from anycastlb.dataplane.refusal_log import RefusalLog


def test_a_flood_of_refusals_is_one_line_per_interval() -> None:
    log = RefusalLog(interval=10.0)
    lines = []
    for tick in range(30_000):  # 30 s at 1,000 refusals/s, the sweep once a second
        now = tick / 1000
        log.note("web", "source_rate", "198.51.100.7", now)
        if tick % 1000 == 999:
            lines += log.lines(now)

    assert len(lines) == 3
    assert lines[0].startswith("connections_refused listener=web reason=source_rate count=1000 ")
    assert lines[1].startswith("connections_refused listener=web reason=source_rate count=10000 ")
    assert "last_source=198.51.100.7" in lines[2]


def test_each_listener_and_reason_gets_its_own_line() -> None:
    log = RefusalLog()
    log.note("web", "source_rate", "198.51.100.7", 0.0)
    log.note("web", "listener_rate", "198.51.100.8", 0.1)
    log.note("api", "source_rate", "198.51.100.9", 0.2)

    assert len(log.lines(1.0)) == 3


def test_nothing_refused_means_nothing_logged() -> None:
    log = RefusalLog()
    log.note("web", "source_rate", "198.51.100.7", 0.0)
    log.lines(1.0)

    assert log.lines(20.0) == []
