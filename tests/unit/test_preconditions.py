"""``If-Match`` as RFC 9110 writes it, against a load balancer's version."""

import pytest

from anycastlb.control.errors import Invalid
from anycastlb.control.preconditions import etag, parse_if_match


@pytest.mark.parametrize(
    ("header", "version", "passes"),
    [
        ('"7"', 7, True),
        ('  "7"  ', 7, True),
        ("7", 7, True),
        ('"6", "7"', 7, True),
        ('"6",W/"8", "7"', 7, True),
        ("*", 7, True),
        ('"6"', 7, False),
        ('W/"7"', 7, False),
        ('"07"', 7, False),
        ('"7"', None, False),
        ("*", None, False),
    ],
)
def test_if_match_passes_only_a_current_strong_tag_or_star(
    header: str, version: int | None, passes: bool
) -> None:
    found = parse_if_match(header)
    assert found is not None
    assert found.matches(version) is passes


@pytest.mark.parametrize("header", ["", "seven", '"7', '"7" "8"', "W/7", '"7",,x', ","])
def test_anything_else_is_refused_naming_the_header(header: str) -> None:
    with pytest.raises(Invalid, match="header If-Match"):
        parse_if_match(header)


def test_no_header_is_no_precondition_and_the_etag_is_the_quoted_version() -> None:
    assert parse_if_match(None) is None
    assert etag(7) == '"7"'


def test_a_refusal_gives_the_current_etag_and_for_a_weak_tag_what_to_send() -> None:
    weak = parse_if_match('W/"7"')
    assert weak is not None
    assert 'send If-Match: "7"' in weak.refusal("web", 7)
    stale = parse_if_match('"6"')
    assert stale is not None
    assert 'ETag "7"' in stale.refusal("web", 7)
    assert "does not exist" in stale.refusal("web", None)
