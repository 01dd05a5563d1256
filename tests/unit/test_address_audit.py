"""The audit of addresses an earlier release stored: every refused spelling is named with its row and
a fix; canonical rows pass."""

import json

from anycastlb.control.store.address_audit import stored_address_problems


def _spec(*backends: str, addresses: tuple[str, ...] = ()) -> str:
    return json.dumps(
        {
            "name": "web",
            "ips": {"addresses": list(addresses)},
            "listeners": [{"port": 443, "backends": [{"address": a, "port": 30443} for a in backends]}],
        }
    )


def test_canonical_rows_of_every_kind_pass() -> None:
    problems = stored_address_problems(
        [(1, "203.0.113.1", "acme"), (2, "2001:db8::1", "acme")],
        [("platform", json.dumps(["203.0.113.0/24", "2001:db8::/64"]))],
        [("id-1", "acme", "web", _spec("198.51.100.7", "2001:db8:5::7", addresses=("203.0.113.1",)))],
    )
    assert problems == []


def test_each_refused_spelling_is_named_with_its_row_and_a_fix() -> None:
    problems = stored_address_problems(
        [(17, "::1%1", "mallory"), (18, "::ffff:7f00:1", "mallory"), (19, "203.0.113.2", "acme")],
        [("scoped", ["2001:db8:7::%1/64"]), ("everything", ["0.0.0.0/0"])],
        [
            ("id-2", "mallory", "evil", _spec("0.0.0.0", "fe80::1%eth0\nx", addresses=("2001:db8::1%2",))),
            ("id-3", "acme", "web", {"listeners": [{"backends": [{"address": "198.51.100.7"}]}]}),
        ],
    )
    lines = [problem.line() for problem in problems]
    assert len(lines) == 7, lines
    assert lines[0].startswith("addresses row 17 (tenant 'mallory'): '::1%1': ")
    assert "DELETE FROM addresses WHERE id = 17" in lines[0]
    assert lines[1].startswith("addresses row 18 (tenant 'mallory'): '::ffff:7f00:1': ")
    assert lines[2].startswith("pool 'scoped' network: '2001:db8:7::%1/64': ")
    assert lines[3].startswith("pool 'everything' network: '0.0.0.0/0': ")
    assert lines[4].startswith("load balancer 'evil' of tenant 'mallory': ips.addresses[0]: '2001:db8::1%2'")
    assert "listeners[0].backends[0].address: '0.0.0.0'" in lines[5]
    assert "listeners[0].backends[1].address: 'fe80::1%eth0\\nx'" in lines[6]
    assert all("delete load balancer 'evil' of tenant 'mallory' (id id-2)" in line for line in lines[4:])
