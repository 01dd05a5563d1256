"""A sharing group's snapshots in the compiled core: every member snapshot is freed exactly when the
last user goes, through reloads and removal, and a bad table is refused without leaking any."""

import socket
from collections.abc import Iterator

import pytest

from anycastlb.dataplane.backend_set import BackendSet
from anycastlb.dataplane.native import Admission, CompiledMaglev, Core, RateWindows, SharedCounters
from anycastlb.dataplane.sni_group import default_member, group_listener, routes
from anycastlb.model.config import Listener

KEY = bytes(16)


def member(name: str, *hostnames: str, default: bool = False) -> Listener:
    return Listener.model_validate(
        {
            "name": name,
            "address": "127.0.0.1",
            "port": 443,
            "hostnames": hostnames,
            "sni_default": default,
            "backends": [{"address": "10.0.0.1", "port": 30443}, {"address": "10.0.0.2", "port": 30443}],
        }
    )


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    sock.setblocking(False)
    yield sock
    sock.close()


class Installer:
    """What the worker does for a group, without the worker's process plumbing."""

    def __init__(self) -> None:
        self.core = Core(0, 65536, 0, -1, 64)
        self.counters, self.rates = SharedCounters(1, KEY), RateWindows(1, KEY)
        self.rows: dict[str, int] = {}
        self.targets = 0

    def row(self, name: str) -> int:
        self.rows.setdefault(name, len(self.rows))
        self.core.ensure_rows(len(self.rows), self.targets + 2)
        return self.rows[name]

    def parts(
        self, listener: Listener
    ) -> tuple[int, Listener, Admission, CompiledMaglev, list[tuple[str, int, int, bytes]], bytes]:
        backends = BackendSet(listener)
        rows = []
        for target in backends.targets:
            rows.append((target.sockaddr[0], target.sockaddr[1], self.targets, b"x\0y\0"))
            self.targets += 1
            self.core.ensure_rows(max(1, len(self.rows)), self.targets)
        admission = Admission(listener, self.counters, self.rates)
        return (
            self.row(listener.name),
            listener,
            admission,
            CompiledMaglev(backends.table),
            rows,
            bytes(len(rows)),
        )

    def install(
        self, sock: socket.socket, members: list[Listener], table: list[tuple[str, int]] | None = None
    ) -> None:
        config = group_listener(members)
        self.core.install_group(
            sock,
            self.row(config.name),
            config,
            Admission(config, self.counters, self.rates),
            [self.parts(listener) for listener in members],
            routes(members) if table is None else table,
            default_member(members),
        )


def test_a_reload_frees_the_old_group_and_its_members_and_removal_frees_the_rest(
    listening: socket.socket,
) -> None:
    installer = Installer()
    first = [member("shop", "shop.example.com"), member("blog", "blog.example.com", default=True)]

    installer.install(listening, first)
    installer.install(listening, [*first, member("api", "api.example.com")])  # a sharer added
    assert (
        installer.core.freed_snapshots() == 3
    )  # the first group and its two members: no connection held them

    installer.core.remove(listening)
    assert installer.core.freed_snapshots() == 4  # the second group and its three members
    assert installer.core.down_flags(listening, 0) == b""  # nothing installed any more


def test_each_member_takes_its_own_health_verdicts(listening: socket.socket) -> None:
    installer = Installer()
    installer.install(listening, [member("shop", "shop.example.com"), member("blog", "blog.example.com")])

    installer.core.apply_health(listening, b"\x01\x00", 0.0, 1)

    assert installer.core.down_flags(listening, 0) == b"\x00\x00"
    assert installer.core.down_flags(listening, 1) == b"\x01\x00"


def test_a_route_to_a_member_that_does_not_exist_is_refused_and_nothing_is_kept(
    listening: socket.socket,
) -> None:
    installer = Installer()
    members = [member("shop", "shop.example.com")]

    with pytest.raises(ValueError, match=r"route 'x\.example\.com' names member 3 of 1"):
        installer.install(listening, members, table=[("x.example.com", 3)])

    installer.install(listening, members)
    installer.core.remove(listening)
    assert installer.core.freed_snapshots() == 2  # only the good group and its member were ever built


def test_a_member_that_fails_to_build_frees_the_group_and_the_members_built_before_it(
    listening: socket.socket,
) -> None:
    installer = Installer()
    good, bad = member("shop", "shop.example.com"), member("blog", "blog.example.com")
    config = group_listener([good, bad])
    row, listener, admission, maglev, backends, down = installer.parts(bad)
    broken = (row, listener, admission, maglev, [(*backends[0][:2], 999, backends[0][3])], down)

    with pytest.raises(IndexError, match="target row 999 was never allocated"):
        installer.core.install_group(
            listening,
            installer.row(config.name),
            config,
            Admission(config, installer.counters, installer.rates),
            [installer.parts(good), broken],
            routes([good, bad]),
            -1,
        )

    assert installer.core.freed_snapshots() == 2  # the group and "shop", nothing left behind
    assert installer.core.down_flags(listening) == b""  # and nothing was installed
