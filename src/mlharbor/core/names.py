"""Three-part names ``catalog.schema.object`` used for tables, feature tables, models, endpoints.

Each part is an identifier: a letter or underscore, then letters, digits or underscores, at most
64 characters. Names are case-insensitive and normalised to lower case. Because every part is a
plain identifier, a name can never carry a path separator, ``..`` or an encoded separator, which is
what keeps paths derived from names inside their root (see ``mlharbor.core.paths``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlharbor.errors import InvalidArgument

_PART = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def check_identifier(part: str, what: str = "name part") -> str:
    """Return ``part`` lower-cased, or raise InvalidArgument saying what a valid identifier is."""
    if not isinstance(part, str):
        raise InvalidArgument(f"{what} must be a string, got {type(part).__name__}")
    norm = part.strip().lower()
    if not _PART.match(norm):
        raise InvalidArgument(
            f"invalid {what} {part!r}: use a letter or underscore followed by letters, digits or "
            "underscores (at most 64 characters)"
        )
    return norm


@dataclass(frozen=True, order=True)
class ObjectName:
    """A validated ``catalog.schema.object`` name."""

    catalog: str
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.catalog}.{self.schema}.{self.name}"

    @property
    def parts(self) -> tuple[str, str, str]:
        return (self.catalog, self.schema, self.name)


def parse_name(full_name: str | ObjectName, what: str = "table name") -> ObjectName:
    """Parse ``catalog.schema.object``; raise InvalidArgument with an example when malformed."""
    if isinstance(full_name, ObjectName):
        return full_name
    if not isinstance(full_name, str):
        raise InvalidArgument(f"{what} must be a string like 'dev.raw.trips'")
    parts = full_name.split(".")
    if len(parts) != 3:
        raise InvalidArgument(
            f"invalid {what} {full_name!r}: expected three parts 'catalog.schema.name', "
            "for example 'dev.raw.trips'"
        )
    try:
        catalog, schema, name = (check_identifier(p, what) for p in parts)
    except InvalidArgument:
        raise InvalidArgument(
            f"invalid {what} {full_name!r}: each of its three parts must start with a letter or underscore "
            "and hold only letters, digits and underscores (at most 64 characters)"
        ) from None
    return ObjectName(catalog, schema, name)
