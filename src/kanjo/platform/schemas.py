"""Field types shared by every context's HTTP shapes: 128-bit ids as UUID text, strict integers."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

_UUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _parse_uuid(value: object) -> int:
    if isinstance(value, str) and _UUID_TEXT.match(value):
        return uuid.UUID(value).int
    raise ValueError("must be a UUID string such as 0190c1d2-7f3a-7000-8000-000000000001")


Id = Annotated[
    int,
    BeforeValidator(_parse_uuid),
    PlainSerializer(lambda v: str(uuid.UUID(int=v)), return_type=str),
    Field(json_schema_extra={"type": "string", "format": "uuid"}),
]
StrictInt = Annotated[int, Field(strict=True)]
