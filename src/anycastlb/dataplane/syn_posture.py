"""Is the kernel set up to survive a SYN flood on our listeners? A pure judgement of sysctl values.

A SYN flood fills a listener's queue of half-open connections, and without SYN cookies the kernel
then drops new SYNs: legitimate clients time out while the edge sees nothing at all, so no limit
in the edge can help. What the edge can do is check the settings that matter at start and say
plainly what to change (it never writes sysctls: that is the host's owner's call):

- ``net.ipv4.tcp_syncookies``: 1 (cookies once the queue overflows) or 2 (always) is required;
- ``net.core.somaxconn`` silently caps every ``listen()`` backlog, so a listener's ``backlog``
  above it is a queue the operator believes in but does not have;
- ``net.ipv4.tcp_max_syn_backlog`` bounds half-open connections from unknown peers, but only when
  cookies are off (with cookies the kernel answers the overflow with a cookie instead of a drop),
  so it is judged only then.

The reader of ``/proc/sys`` and the metrics live in ``anycastlb.edge.syn_check``.
"""

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["KernelSettings", "PostureCheck", "judge_syn_posture"]


@dataclass(frozen=True, slots=True)
class KernelSettings:
    """The sysctls that matter; ``None`` where ``/proc/sys`` could not be read."""

    syncookies: int | None
    somaxconn: int | None
    max_syn_backlog: int | None


@dataclass(frozen=True, slots=True)
class PostureCheck:
    """One check's verdict; ``message`` (when not ok) says what is wrong and what to set."""

    check: str  # syncookies | somaxconn | max_syn_backlog
    ok: bool
    message: str = ""


def _unreadable(check: str, sysctl: str) -> PostureCheck:
    return PostureCheck(
        check,
        ok=False,
        message=f"cannot read {sysctl} from /proc/sys (a container without the host's net sysctls?): "
        "check it on the host",
    )


def judge_syn_posture(kernel: KernelSettings, backlogs: Mapping[str, int]) -> tuple[PostureCheck, ...]:
    """One verdict per check, for listeners named in ``backlogs`` (name → requested ``backlog``)."""
    wanted = max(backlogs.values(), default=0)
    largest = sorted(name for name, backlog in backlogs.items() if backlog == wanted)
    who = f"listener {', '.join(largest)} asks for backlog {wanted}"
    verdicts = []

    if kernel.syncookies is None:
        verdicts.append(_unreadable("syncookies", "net.ipv4.tcp_syncookies"))
    elif kernel.syncookies in (1, 2):
        verdicts.append(PostureCheck("syncookies", ok=True))
    else:
        verdicts.append(
            PostureCheck(
                "syncookies",
                ok=False,
                message=f"net.ipv4.tcp_syncookies is {kernel.syncookies}: a SYN flood will fill the "
                "listen queues and legitimate clients will be dropped; set net.ipv4.tcp_syncookies=1",
            )
        )

    if kernel.somaxconn is None:
        verdicts.append(_unreadable("somaxconn", "net.core.somaxconn"))
    elif wanted > kernel.somaxconn:
        verdicts.append(
            PostureCheck(
                "somaxconn",
                ok=False,
                message=f"{who}, but net.core.somaxconn={kernel.somaxconn} caps it at "
                f"{kernel.somaxconn}; set net.core.somaxconn>={wanted} or lower the backlog",
            )
        )
    else:
        verdicts.append(PostureCheck("somaxconn", ok=True))

    if kernel.syncookies in (1, 2):
        verdicts.append(PostureCheck("max_syn_backlog", ok=True))  # overflow gets cookies, not drops
    elif kernel.max_syn_backlog is None:
        verdicts.append(_unreadable("max_syn_backlog", "net.ipv4.tcp_max_syn_backlog"))
    elif wanted > kernel.max_syn_backlog:
        verdicts.append(
            PostureCheck(
                "max_syn_backlog",
                ok=False,
                message=f"{who}, but without SYN cookies net.ipv4.tcp_max_syn_backlog="
                f"{kernel.max_syn_backlog} drops half-open connections from unknown peers sooner; "
                f"turn SYN cookies on, or set net.ipv4.tcp_max_syn_backlog>={wanted}",
            )
        )
    else:
        verdicts.append(PostureCheck("max_syn_backlog", ok=True))
    return tuple(verdicts)
