"""``ETag`` and ``If-Match`` for load balancers (RFC 9110 §8.8.3 and §13.1.1), with no I/O.

A load balancer's entity tag is its version, quoted as the RFC requires: version 7 is sent as
``ETag: "7"``, and ``If-Match: "7"`` (what a client copies from that header) applies a ``PUT``
only while the version is still 7. The version changes exactly when the spec does, so it is a
strong validator. ``If-Match`` compares strongly: a weak tag (``W/"7"``) never matches, as the
RFC says, and the 412 explains why instead of leaving a client to retry forever. ``*`` matches
any existing load balancer, so ``If-Match: *`` means "update, never create". A bare number
(``7``) is still read as ``"7"``: it was this API's form before it sent ETags.
"""

import re
from dataclasses import dataclass

from anycastlb.control.errors import Invalid

__all__ = ["IfMatch", "etag", "parse_if_match"]

# One list member: an RFC 9110 entity-tag (etagc: no DQUOTE, no space, no control), or a bare
# version; then a comma or the end.
_MEMBER = re.compile(r'[ \t]*(?:(W/)?"([\x21\x23-\x7e\x80-\xff]*)"|(\d{1,18}))[ \t]*(?:,|$)')


def etag(version: int) -> str:
    """The ``ETag`` header value of a load balancer at ``version``."""
    return f'"{version}"'


@dataclass(frozen=True, slots=True)
class IfMatch:
    """A parsed ``If-Match``: ``*``, or the strong and weak tags it lists."""

    header: str
    any_current: bool = False
    strong: frozenset[str] = frozenset()
    weak: frozenset[str] = frozenset()

    def matches(self, version: int | None) -> bool:
        """Whether a load balancer at ``version`` (None: there is none) passes."""
        if version is None:
            return False
        return self.any_current or str(version) in self.strong

    def refusal(self, name: str, version: int | None) -> str:
        """Why it did not pass, and what to send instead (the 412's detail)."""
        if version is None:
            return (
                f"load balancer {name!r} does not exist (If-Match {self.header}); create it without If-Match"
            )
        why = (
            f"load balancer {name!r} is at version {version} (ETag {etag(version)}), "
            f"not If-Match {self.header}"
        )
        if str(version) in self.weak:
            return (
                f"{why}: a weak tag (W/) never matches If-Match (RFC 9110 §13.1.1); send "
                f"If-Match: {etag(version)} as the ETag header gives it"
            )
        return f"{why}; re-read it (GET, which answers its ETag) and retry"


def _invalid(header: str) -> Invalid:
    return Invalid(
        f'header If-Match: {header!r} is not an entity tag; send the ETag a GET or PUT answered (e.g. "7"), '
        "or * to update only an existing load balancer"
    )


def parse_if_match(header: str | None) -> IfMatch | None:
    """``If-Match`` as sent; None without one. Raises :class:`Invalid` (422) for a value that is
    not ``*``, a comma-separated list of entity tags, or a bare version."""
    if header is None:
        return None
    text = header.strip()
    if text == "*":
        return IfMatch(header=text, any_current=True)
    strong: set[str] = set()
    weak: set[str] = set()
    position = 0
    while position < len(text):
        member = _MEMBER.match(text, position)
        if member is None or member.end() == position:
            raise _invalid(text)
        weak_mark, tag, bare = member.groups()
        if bare is not None:
            strong.add(str(int(bare)))
        else:
            (weak if weak_mark else strong).add(tag)
        position = member.end()
    if not strong and not weak:
        raise _invalid(text)
    return IfMatch(header=text, strong=frozenset(strong), weak=frozenset(weak))
