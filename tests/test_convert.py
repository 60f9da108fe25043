"""Typed calls become the tracking spec's JSON exactly as protobuf's own JSON printer would make them."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from hypothesis import given
from hypothesis import strategies as st

from audiences_server.api import convert

_SCALARS = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=12)


@given(st.dictionaries(st.text(max_size=6), _VALUES, max_size=5))
def test_a_struct_reads_as_the_json_printer_reads_it(value: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    struct.update(value)
    struct.fields["unset"].Clear()  # a Value with nothing set prints as null
    got = convert.struct_dict(struct, "properties")
    assert got == json_format.MessageToDict(struct)
    assert [type(v) for v in got.values()] == [type(v) for v in json_format.MessageToDict(struct).values()]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_struct_holding_what_json_cannot_is_refused(bad: float) -> None:
    struct = struct_pb2.Struct()
    struct.update({"outer": {"list": [1, {"x": bad}]}})
    with pytest.raises(convert._Refused, match="`properties` holds NaN or an infinity"):
        convert.struct_dict(struct, "properties")
