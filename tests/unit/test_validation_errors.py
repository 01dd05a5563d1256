"""A bad item is reported once: pydantic's length error that only echoes it is dropped, a list too
short as written keeps its own."""

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from anycastlb.control.cli.errors import InputError
from anycastlb.control.cli.lb_spec import validate_spec
from anycastlb.model.validation_errors import without_echoes


class _Ports(BaseModel):
    ports: Annotated[tuple[int, ...], Field(min_length=2)]


def _problems(value: object) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        _Ports.model_validate({"ports": value})
    return [(tuple(problem["loc"]), problem["type"]) for problem in without_echoes(caught.value.errors())]


def test_a_bad_item_of_a_long_enough_tuple_is_the_only_error() -> None:
    assert _problems([1, "x"]) == [(("ports", 1), "int_parsing")]


def test_a_tuple_too_short_as_written_keeps_its_length_error() -> None:
    assert _problems([1]) == [(("ports",), "too_short")]
    assert _problems(["x"]) == [(("ports", 0), "int_parsing"), (("ports",), "too_short")]


def test_the_clis_spec_check_names_the_bad_port_and_nothing_else() -> None:
    raw = {"name": "web", "listeners": [{"port": 70000, "backends": [{"address": "10.0.0.1", "port": 1}]}]}
    with pytest.raises(InputError) as caught:
        validate_spec(raw, "web.yaml")
    lines = str(caught.value).splitlines()[1:]
    assert lines == ["  listeners[0] (port 70000).port: Input should be less than or equal to 65535"]
