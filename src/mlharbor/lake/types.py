"""Arrow type names as users write them (``int64``, ``double``, ``timestamp[us, tz=UTC]``)."""

from __future__ import annotations

import re

import pyarrow as pa

from mlharbor.errors import InvalidArgument

__all__ = ["parse_type"]

_SIMPLE: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "boolean": pa.bool_(),
    "int8": pa.int8(), "int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64(),
    "uint8": pa.uint8(), "uint16": pa.uint16(), "uint32": pa.uint32(), "uint64": pa.uint64(),
    "float": pa.float32(), "float32": pa.float32(), "double": pa.float64(), "float64": pa.float64(),
    "string": pa.string(), "utf8": pa.string(), "large_string": pa.large_string(),
    "binary": pa.binary(), "date32": pa.date32(), "date32[day]": pa.date32(), "date": pa.date32(),
}
_TIMESTAMP = re.compile(r"^timestamp\[(s|ms|us|ns)(?:,\s*tz=([A-Za-z0-9_/+\-:]+))?\]$")
_DECIMAL = re.compile(r"^decimal128\((\d{1,2}),\s*(\d{1,2})\)$")


def parse_type(text: str) -> pa.DataType:
    """Parse the Arrow type names users write (``int64``, ``timestamp[us, tz=UTC]``, ...)."""
    t = text.strip().lower() if not text.strip().startswith("timestamp") else text.strip()
    if t in _SIMPLE:
        return _SIMPLE[t]
    if m := _TIMESTAMP.match(t):
        try:
            return pa.timestamp(m.group(1), tz=m.group(2))
        except (pa.ArrowInvalid, ValueError) as exc:
            raise InvalidArgument(f"bad time zone in type {text!r}: {exc}") from None
    if m := _DECIMAL.match(t):
        precision, scale = int(m.group(1)), int(m.group(2))
        if not 1 <= precision <= 38 or scale > precision:
            raise InvalidArgument(f"decimal128 needs 1 <= precision <= 38 and scale <= precision, got {text!r}")
        return pa.decimal128(precision, scale)
    raise InvalidArgument(
        f"unknown column type {text!r}; use one of {', '.join(sorted(_SIMPLE))}, "
        "timestamp[us] or timestamp[us, tz=UTC], decimal128(p, s)"
    )
