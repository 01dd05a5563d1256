"""Kubernetes label-selector strings, as ``kubectl get -l`` takes them, parsed and matched without a client.

Grammar (the one ``k8s.io/apimachinery/pkg/labels.Parse`` accepts, minus the numeric ``<``/``>``)::

    selector     := ""  |  requirement ("," requirement)*        comma means AND; "" matches every node
    requirement  := key                                          the label exists
                  | "!" key                                      the label does not exist
                  | key ("=" | "==") value                       exists and equals (value may be empty)
                  | key "!=" value                               absent, or a different value
                  | key "in" "(" value ("," value)* ")"          exists and is one of the values
                  | key "notin" "(" value ("," value)* ")"       absent, or none of the values

Keys are qualified names (``[prefix/]name``), values label values; both are checked so a typo fails
with a :class:`SelectorError` that names the character where it starts instead of matching nothing.
``str(selector)`` renders a canonical form (``==`` as ``=``, set values sorted) that parses back equal.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["Operator", "Requirement", "Selector", "SelectorError", "parse_selector"]

Operator = Literal["=", "!=", "in", "notin", "exists", "!"]

_SPECIAL = frozenset(" \t\r\n!=,()<>")
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_KEYWORDS = {"in": "in", "notin": "notin"}


class SelectorError(ValueError):
    """The text is not a label selector; ``position`` is the 0-based index where the problem starts."""

    def __init__(self, text: str, position: int, reason: str) -> None:
        self.text = text
        self.position = position
        self.reason = reason
        super().__init__(f"{text!r}, character {position + 1}: {reason}")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()  # one for = and !=; sorted and distinct for in/notin; none otherwise

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case "exists":
                return value is not None
            case "!":
                return value is None
            case "=" | "in":
                return value is not None and value in self.values
            case _:  # "!=" and "notin" match a node without the label, as in Kubernetes
                return value is None or value not in self.values

    def __str__(self) -> str:
        match self.operator:
            case "exists":
                return self.key
            case "!":
                return f"!{self.key}"
            case "=" | "!=":
                return f"{self.key}{self.operator}{self.values[0]}"
            case _:
                return f"{self.key} {self.operator} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()  # all must hold; none: matches everything

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "in", "notin", "!", "=", "==", "!=", ",", "(", ")", "<", ">", "end"
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "!=" and text[i + 1 : i + 2] == "=":
            tokens.append(_Token(char + "=", char + "=", i))
            i += 2
        elif char in _SPECIAL:
            tokens.append(_Token(char, char, i))
            i += 1
        else:
            start = i
            while i < len(text) and text[i] not in _SPECIAL and not text[i].isspace():
                i += 1
            word = text[start:i]
            tokens.append(_Token(_KEYWORDS.get(word, "ident"), word, start))
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _key_problem(key: str) -> str | None:
    prefix, slash, name = key.rpartition("/")
    if slash and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.match(prefix)):
        return f"label key prefix {prefix!r} must be a DNS subdomain (lowercase letters, digits, '-' and '.')"
    if len(name) > 63 or not _NAME.match(name):
        return (
            f"label key {key!r} needs a name of 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


def _value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        return (
            f"label value {value!r} must be at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def fail(self, token: _Token, reason: str) -> SelectorError:
        return SelectorError(self.text, token.position, reason)

    def next(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def key(self) -> str:
        token = self.next()
        if token.kind != "ident":
            found = "the end" if token.kind == "end" else repr(token.text)
            raise self.fail(token, f"expected a label key, found {found}")
        problem = _key_problem(token.text)
        if problem:
            raise self.fail(token, problem)
        return token.text

    def value(self) -> str:
        token = self.next()
        if token.kind not in {"ident", "in", "notin"}:
            found = "the end" if token.kind == "end" else repr(token.text)
            raise self.fail(token, f"expected a label value, found {found}")
        problem = _value_problem(token.text)
        if problem:
            raise self.fail(token, problem)
        return token.text

    def requirement(self) -> Requirement:
        if self.peek().kind == "!":
            self.next()
            return Requirement(self.key(), "!")
        key = self.key()
        token = self.peek()
        if token.kind in {",", "end"}:
            return Requirement(key, "exists")
        self.next()
        if token.kind in {"=", "==", "!="}:
            after = self.peek()
            value = "" if after.kind in {",", "end"} else self.value()
            return Requirement(key, "!=" if token.kind == "!=" else "=", (value,))
        if token.kind in {"in", "notin"}:
            return Requirement(key, "in" if token.kind == "in" else "notin", self.values())
        if token.kind in {"<", ">"}:
            raise self.fail(
                token, f"'{token.text}' comparisons are not supported; list values with 'in (...)'"
            )
        raise self.fail(token, f"expected '=', '!=', 'in' or 'notin' after {key!r}, found {token.text!r}")

    def values(self) -> tuple[str, ...]:
        opening = self.next()
        if opening.kind != "(":
            raise self.fail(opening, "expected '(' to open the list of values")
        if self.peek().kind == ")":
            raise self.fail(self.peek(), "the list of values is empty; name at least one value")
        values = [self.value()]
        while (token := self.next()).kind == ",":
            values.append(self.value())
        if token.kind != ")":
            raise self.fail(token, "expected ',' or ')' in the list of values")
        return tuple(sorted(set(values)))

    def selector(self) -> Selector:
        if self.peek().kind == "end":
            return Selector()
        requirements = [self.requirement()]
        while (token := self.next()).kind != "end":
            if token.kind != ",":
                raise self.fail(token, f"expected ',' between requirements, found {token.text!r}")
            requirements.append(self.requirement())
        return Selector(tuple(requirements))


def parse_selector(text: str) -> Selector:
    """Parse a label selector; raise :class:`SelectorError` saying where and what is wrong."""
    return _Parser(text).selector()
