"""``--ttl`` and ``--grace``: a number needs its unit, as durations in config files do (issue 13)."""

import pytest

from anycastlb.control.cli.errors import InputError
from anycastlb.control.cli.lifetimes import seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", 7_776_000), ("12h", 43_200), ("30m", 1800), ("3600s", 3600), ("0", 0), (None, None)],
)
def test_lifetimes_with_a_unit_and_a_bare_zero_are_seconds(text: str | None, expected: int | None) -> None:
    assert seconds(text, "--ttl") == expected


def test_a_lifetime_without_a_unit_is_refused_with_how_to_write_it() -> None:
    with pytest.raises(InputError, match=r"^--ttl 3600 has no unit; write 3600s for seconds \(or m, h, d\)$"):
        seconds("3600", "--ttl")
