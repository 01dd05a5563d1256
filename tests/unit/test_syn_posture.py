"""SYN-flood posture: sysctl values and listen backlogs in, one verdict per check out."""

from pathlib import Path

import pytest

from anycastlb.dataplane.syn_posture import KernelSettings, judge_syn_posture
from anycastlb.edge.syn_check import read_kernel_settings


@pytest.mark.parametrize(
    ("syncookies", "somaxconn", "max_syn_backlog", "backlog", "problems"),
    [
        (1, 4096, 2048, 4096, {}),
        (2, 4096, 128, 4096, {}),  # cookies always: the SYN backlog never drops
        (0, 4096, 8192, 4096, {"syncookies": "set net.ipv4.tcp_syncookies=1"}),
        (
            1,
            128,
            2048,
            4096,
            {"somaxconn": "net.core.somaxconn=128 caps it at 128; set net.core.somaxconn>=4096"},
        ),
        (1, 4096, 64, 4096, {}),  # with cookies the SYN backlog only decides when cookies start
        (
            0,
            4096,
            1024,
            4096,
            {
                "syncookies": "tcp_syncookies is 0",
                "max_syn_backlog": "net.ipv4.tcp_max_syn_backlog=1024 drops half-open connections",
            },
        ),
        (
            None,  # cookies unknown: the SYN backlog is judged as if they were off
            4096,
            2048,
            4096,
            {"syncookies": "cannot read net.ipv4.tcp_syncookies", "max_syn_backlog": "backlog=2048"},
        ),
        (1, None, 2048, 4096, {"somaxconn": "cannot read net.core.somaxconn"}),
        (0, 4096, None, 16, {"syncookies": "is 0", "max_syn_backlog": "cannot read"}),
    ],
)
def test_each_problem_is_named_with_the_setting_to_change(
    syncookies: int | None,
    somaxconn: int | None,
    max_syn_backlog: int | None,
    backlog: int,
    problems: dict[str, str],
) -> None:
    verdicts = judge_syn_posture(KernelSettings(syncookies, somaxconn, max_syn_backlog), {"web": backlog})

    assert [verdict.check for verdict in verdicts] == ["syncookies", "somaxconn", "max_syn_backlog"]
    assert {v.check for v in verdicts if not v.ok} == set(problems)
    for verdict in verdicts:
        if not verdict.ok:
            assert problems[verdict.check] in verdict.message


def test_the_listener_with_the_largest_backlog_is_named() -> None:
    verdicts = judge_syn_posture(KernelSettings(1, 1024, 1024), {"web": 512, "api": 2048, "ssh": 2048})

    assert "listener api, ssh asks for backlog 2048" in verdicts[1].message


def test_no_listeners_is_no_backlog_problem() -> None:
    assert all(verdict.ok for verdict in judge_syn_posture(KernelSettings(1, 128, 128), {}))


def test_the_sysctls_are_read_from_proc_sys_and_an_unreadable_one_is_none(tmp_path: Path) -> None:
    (tmp_path / "net/ipv4").mkdir(parents=True)
    (tmp_path / "net/ipv4/tcp_syncookies").write_text("1\n")
    (tmp_path / "net/ipv4/tcp_max_syn_backlog").write_text("not a number\n")

    assert read_kernel_settings(tmp_path) == KernelSettings(
        syncookies=1, somaxconn=None, max_syn_backlog=None
    )
