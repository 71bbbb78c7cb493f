"""Shared value types (names, actors, domain records), clock and ids. No backends here."""

from mlharbor.core.actors import Actor
from mlharbor.core.names import ObjectName, parse_name

__all__ = ["Actor", "ObjectName", "parse_name"]
