"""Derived ids: the same value as RFC 4122 UUIDv5 (ids already stored stay valid), and ids round-trip as text."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from kanjo.kernel.ids import format_id, name_id, parse_id

NAMESPACE = uuid.UUID("6b616e6a-6f00-4000-8000-74696d656470")


@given(st.text(max_size=200))
def test_a_derived_id_is_the_uuid5_of_its_name(name: str) -> None:
    assert name_id(NAMESPACE, name) == uuid.uuid5(NAMESPACE, name).int
    assert name_id(NAMESPACE.bytes, name.encode()) == uuid.uuid5(NAMESPACE, name).int


def test_a_derived_id_reads_back_as_a_version_5_uuid() -> None:
    text = format_id(name_id(NAMESPACE, "A0001:42"))
    assert uuid.UUID(text).version == 5 and parse_id(text) == name_id(NAMESPACE, "A0001:42")
