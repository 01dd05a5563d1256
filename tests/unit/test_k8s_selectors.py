"""Label selectors as `kubectl get -l` takes them: what each form matches, where a broken one breaks,
and that the canonical text parses back to the same selector (hypothesis)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anycastlb.k8s.selectors import Requirement, Selector, SelectorError, parse_selector

NODE = {"role": "edge", "zone": "fra-1", "node.kubernetes.io/instance-type": "m5.large", "empty": ""}

MATCHES = [
    # (case, selector, matches NODE)
    ("the empty selector matches every node", "", True),
    ("blank text is the empty selector", "   ", True),
    ("equality matches the value", "role=edge", True),
    ("equality rejects another value", "role=core", False),
    ("double equals is equality", "role==edge", True),
    ("equality on a missing label does not match", "rack=r1", False),
    ("an empty value matches an empty label", "empty=", True),
    ("an empty value does not match a missing label", "rack=", False),
    ("inequality matches another value", "role!=core", True),
    ("inequality rejects the same value", "role!=edge", False),
    ("inequality matches a node without the label", "rack!=r1", True),
    ("in matches one of the values", "zone in (fra-1,fra-2)", True),
    ("in rejects values not listed", "zone in (ams-1,ams-2)", False),
    ("in never matches a missing label", "rack in (r1)", False),
    ("notin matches a value not listed", "zone notin (ams-1)", True),
    ("notin rejects a listed value", "zone notin (fra-1)", False),
    ("notin matches a node without the label", "rack notin (r1)", True),
    ("a bare key means the label exists", "role", True),
    ("a bare key of a missing label does not match", "rack", False),
    ("an exclamation mark means the label is absent", "!rack", True),
    ("an exclamation mark rejects a present label", "!role", False),
    ("a prefixed key is matched whole", "node.kubernetes.io/instance-type=m5.large", True),
    ("comma means and: all hold", "role=edge,zone in (fra-1),!rack", True),
    ("comma means and: one fails", "role=edge,zone=ams-1", False),
    ("spaces around operators are fine", " role = edge , zone  in ( fra-1 , fra-2 ) ", True),
    ("in needs no space before the parenthesis", "zone in(fra-1)", True),
    ("a space after the exclamation mark is fine", "! rack", True),
    ("the values in and notin are plain values", "role in (in,notin,edge)", True),
]


@pytest.mark.parametrize(("text", "expected"), [case[1:] for case in MATCHES], ids=[c[0] for c in MATCHES])
def test_selector_matches(text: str, expected: bool) -> None:
    assert parse_selector(text).matches(NODE) is expected


ERRORS = [
    # (case, selector, position of the problem, words the reason contains)
    ("a trailing comma wants another requirement", "role=edge,", 10, "expected a label key, found the end"),
    ("a leading comma has no key", ",role", 0, "expected a label key, found ','"),
    ("two commas in a row", "a,,b", 2, "expected a label key"),
    ("an unclosed list of values", "zone in (fra-1,fra-2", 20, "expected ',' or ')'"),
    ("a list without parentheses", "zone in fra-1", 8, "expected '('"),
    ("an empty list of values", "zone notin ()", 12, "the list of values is empty"),
    ("an empty value in a list", "zone in (a,,b)", 11, "expected a label value, found ','"),
    ("two values without a comma", "zone in (a b)", 11, "expected ',' or ')'"),
    ("a missing comma between requirements", "role=edge zone=fra", 10, "expected ',' between requirements"),
    ("an operator without a key", "=edge", 0, "expected a label key, found '='"),
    ("a value after a negated key", "!role=edge", 5, "expected ',' between requirements"),
    ("an exclamation mark after the key", "role!edge", 4, "expected '=', '!=', 'in' or 'notin'"),
    ("a numeric comparison", "cpus>4", 4, "'>' comparisons are not supported"),
    ("a key with a bad character", "ro*le=edge", 0, "label key 'ro*le'"),
    ("a key ending in a dash", "role-=edge", 0, "label key 'role-'"),
    ("a key with an empty name after the prefix", "example.com/=x", 0, "needs a name"),
    ("a key with an uppercase prefix", "Example.com/role=x", 0, "must be a DNS subdomain"),
    ("a key longer than 63 characters", "k" * 64, 0, "1-63 letters"),
    ("a value with a bad character", "role=ed@ge", 5, "label value 'ed@ge'"),
    ("a value longer than 63 characters", "role=" + "v" * 64, 5, "at most 63"),
    ("a value starting with a dot", "zone in (.a)", 9, "label value '.a'"),
    ("the keyword in as a key", "in=x", 0, "expected a label key, found 'in'"),
    ("a value that is a parenthesis", "role=(", 5, "expected a label value, found '('"),
]


@pytest.mark.parametrize(
    ("text", "position", "reason"), [case[1:] for case in ERRORS], ids=[c[0] for c in ERRORS]
)
def test_a_broken_selector_names_the_position(text: str, position: int, reason: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_selector(text)
    assert caught.value.position == position
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{text!r}, character {position + 1}: ")


CANONICAL = [
    ("double equals renders as one", "a==b", "a=b"),
    ("set values are sorted and distinct", "a in (z,y,z)", "a in (y,z)"),
    ("spaces go", " a = b ,  ! c ", "a=b,!c"),
    ("requirements keep their order", "b,a", "b,a"),
    ("an empty value stays", "a=", "a="),
    ("notin keeps its keyword", "a notin (x)", "a notin (x)"),
]


@pytest.mark.parametrize(("text", "canonical"), [c[1:] for c in CANONICAL], ids=[c[0] for c in CANONICAL])
def test_selector_renders_canonically(text: str, canonical: str) -> None:
    assert str(parse_selector(text)) == canonical
    assert parse_selector(canonical) == parse_selector(text)


def test_parsed_requirements_are_plain_values() -> None:
    assert parse_selector("a=b,c in (e,d),!f,g") == Selector(
        (
            Requirement("a", "=", ("b",)),
            Requirement("c", "in", ("d", "e")),
            Requirement("f", "!"),
            Requirement("g", "exists"),
        )
    )


# ---- properties -----------------------------------------------------------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_name = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    st.sampled_from(_ALNUM),
    st.text(alphabet=_ALNUM + "-_.", max_size=20),
    st.sampled_from(_ALNUM) | st.just(""),
).filter(lambda name: name[-1] in _ALNUM and len(name) <= 63)
_prefix = st.lists(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3
)
_key = st.builds(
    lambda prefix, name: ".".join(prefix) + "/" + name if prefix else name, _prefix | st.just([]), _name
).filter(lambda key: key not in {"in", "notin"})
_values = st.lists(_name, min_size=1, max_size=4).map(lambda values: tuple(sorted(set(values))))
_requirement = st.one_of(
    st.builds(lambda key, value: Requirement(key, "=", (value,)), _key, _name | st.just("")),
    st.builds(lambda key, value: Requirement(key, "!=", (value,)), _key, _name | st.just("")),
    st.builds(lambda key, values: Requirement(key, "in", values), _key, _values),
    st.builds(lambda key, values: Requirement(key, "notin", values), _key, _values),
    st.builds(lambda key: Requirement(key, "exists"), _key),
    st.builds(lambda key: Requirement(key, "!"), _key),
)
_selector = st.lists(_requirement, max_size=5).map(lambda items: Selector(tuple(items)))


@given(_selector)
def test_any_selector_parses_back_from_its_text(selector: Selector) -> None:
    assert parse_selector(str(selector)) == selector


@given(st.text(alphabet="ab=!,() \tinot-./_é", max_size=30) | st.text(max_size=30))
def test_junk_never_crashes_the_parser(text: str) -> None:
    position: int | None
    try:
        selector = parse_selector(text)
    except SelectorError as error:
        position = error.position
    else:
        position = None
        assert parse_selector(str(selector)) == selector
    assert position is None or 0 <= position <= len(text)


@given(_selector, st.dictionaries(st.sampled_from(["a", "b", "role", "zone"]), _name, max_size=4))
def test_a_negation_matches_exactly_where_the_requirement_does_not(
    selector: Selector, labels: dict[str, str]
) -> None:
    opposite = {"=": "!=", "!=": "=", "in": "notin", "notin": "in", "exists": "!", "!": "exists"}
    for requirement in selector.requirements:
        flipped = Requirement(requirement.key, opposite[requirement.operator], requirement.values)  # type: ignore[arg-type]
        assert requirement.matches(labels) is not flipped.matches(labels)
