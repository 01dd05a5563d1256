"""The announce decision: serving VIPs are announced, others and all while draining withdrawn; flaps
are held down a little longer each time."""

import ipaddress

import pytest

from anycastlb.bgp.policy import Announcement, AnnouncePolicy, Attributes, FlapDamper

VIP = ipaddress.ip_network("203.0.113.10/32")
VIP6 = ipaddress.ip_network("2001:db8::10/128")
ATTRS = {VIP: Attributes("self", med=100), VIP6: Attributes("self")}


def _policy(hold_down: float = 1.0, max_hold_down: float = 8.0) -> AnnouncePolicy:
    return AnnouncePolicy(FlapDamper(hold_down, max_hold_down, flap_window=60.0))


def _prefixes(announcements: frozenset[Announcement]) -> set[str]:
    return {str(a.prefix) for a in announcements}


def test_a_serving_vip_is_announced_with_its_attributes_and_a_dead_one_is_not() -> None:
    announced, wake = _policy().decide({VIP: True, VIP6: False}, ATTRS, draining=False, now=0.0)
    assert announced == frozenset({Announcement(VIP, ATTRS[VIP])})
    assert wake is None


def test_draining_withdraws_everything_even_serving_vips() -> None:
    policy = _policy()
    policy.decide({VIP: True, VIP6: True}, ATTRS, draining=False, now=0.0)
    announced, _ = policy.decide({VIP: True, VIP6: True}, ATTRS, draining=True, now=1.0)
    assert announced == frozenset()


def test_a_vip_withdrawn_once_comes_back_at_once() -> None:
    policy = _policy()
    policy.decide({VIP: True}, ATTRS, draining=False, now=0.0)
    policy.decide({VIP: False}, ATTRS, draining=False, now=1.0)
    announced, wake = policy.decide({VIP: True}, ATTRS, draining=False, now=1.1)
    assert _prefixes(announced) == {str(VIP)}
    assert wake is None


def test_a_flapping_vip_is_held_down_doubling_up_to_the_maximum() -> None:
    policy = _policy(hold_down=1.0, max_hold_down=4.0)
    now = 0.0
    holds = []
    for _ in range(6):
        policy.decide({VIP: True}, ATTRS, draining=False, now=now)
        now += 0.1
        policy.decide({VIP: False}, ATTRS, draining=False, now=now)  # withdrawn
        withdrawn_at = now
        now += 0.01
        announced, wake = policy.decide({VIP: True}, ATTRS, draining=False, now=now)
        if wake is None:
            holds.append(0.0)
            continue
        assert announced == frozenset()  # held down: not announced although serving
        holds.append(round(wake - withdrawn_at, 6))
        now = wake
    assert holds == [0.0, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_withdrawals_outside_the_flap_window_are_forgotten() -> None:
    damper = FlapDamper(hold_down=1.0, max_hold_down=8.0, flap_window=10.0)
    damper.withdrawn(VIP, 0.0)
    damper.withdrawn(VIP, 1.0)
    assert damper.ready_at(VIP, 1.5) == 2.0
    assert damper.ready_at(VIP, 10.5) == 10.5  # the first withdrawal aged out: one left, no hold


def test_a_withdrawal_is_never_delayed_by_the_hold_down() -> None:
    policy = _policy(hold_down=5.0)
    for now in (0.0, 1.0, 2.0):
        policy.decide({VIP: True}, ATTRS, draining=False, now=now)
        announced, _ = policy.decide({VIP: False}, ATTRS, draining=False, now=now + 0.5)
        assert announced == frozenset()


def test_changed_attributes_are_a_new_announcement() -> None:
    policy = _policy()
    first, _ = policy.decide({VIP: True}, ATTRS, draining=False, now=0.0)
    other = {VIP: Attributes("self", med=200)}
    second, _ = policy.decide({VIP: True}, other, draining=False, now=1.0)
    assert first != second
    assert next(iter(second)).attributes.med == 200


def test_damper_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="hold_down"):
        FlapDamper(hold_down=5.0, max_hold_down=1.0)


def test_held_down_vips_are_reported_with_their_release_time() -> None:
    policy = _policy(hold_down=1.0)
    for now in (0.0, 1.0):
        policy.decide({VIP: True}, ATTRS, draining=False, now=now)
        policy.decide({VIP: False}, ATTRS, draining=False, now=now + 0.5)
    policy.decide({VIP: True}, ATTRS, draining=False, now=1.6)
    assert policy.held_down == {VIP: 2.5}
