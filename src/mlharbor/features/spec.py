"""The feature spec: everything needed to rebuild a model's features, as JSON.

A training set produces a spec (its lookups with the feature-table versions it read, functions,
input and output columns). The registry packages it inside the model, so batch scoring and serving
evaluate the same lookups with no extra code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from mlharbor.errors import InvalidArgument

SPEC_VERSION = 1


@dataclass(frozen=True)
class LookupSpec:
    """One resolved lookup: frame columns → a feature table's keys, features → output columns."""

    table: str
    lookup_keys: list[str]
    primary_keys: list[str]
    timestamp_key: str | None
    timestamp_lookup_key: str | None
    features: list[str]
    outputs: list[str]
    lookback_seconds: float | None
    defaults: dict[str, Any]
    table_version: int

    @property
    def lookback(self) -> timedelta | None:
        return None if self.lookback_seconds is None else timedelta(seconds=self.lookback_seconds)


@dataclass(frozen=True)
class FunctionSpec:
    """One resolved on-demand feature: a pinned function version and how its parameters bind."""

    name: str
    version: int
    sha256: str
    input_bindings: dict[str, str]
    output_name: str
    return_type: str


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class FeatureSpec:
    """Lookups, functions and columns of a training set, serialisable with ``to_json``."""

    lookups: list[LookupSpec]
    input_columns: list[Column]
    output_columns: list[Column]
    label: str | None = None
    exclude_columns: list[str] = field(default_factory=list)
    functions: list[FunctionSpec] = field(default_factory=list)

    @property
    def table_versions(self) -> dict[str, int]:
        """Feature table → the version the training set read."""
        return {lk.table: lk.table_version for lk in self.lookups}

    @property
    def feature_columns(self) -> list[str]:
        """The looked-up and computed output columns, in order."""
        return [*(name for lk in self.lookups for name in lk.outputs), *(f.output_name for f in self.functions)]

    @property
    def key_columns(self) -> list[str]:
        """The input columns a caller supplies for an online lookup: lookup keys and function inputs
        that are neither looked up nor computed (in first-use order)."""
        produced = set(self.feature_columns)
        needed: list[str] = []
        for column in [*(k for lk in self.lookups for k in lk.lookup_keys),
                       *(c for f in self.functions for c in f.input_bindings.values())]:
            if column not in produced and column not in needed:
                needed.append(column)
        return needed

    def to_json(self) -> str:
        return json.dumps({"spec_version": SPEC_VERSION, **asdict(self)}, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Parse a spec written by ``to_json``; InvalidArgument for anything else."""
        try:
            raw = json.loads(text)
            if raw.pop("spec_version", None) != SPEC_VERSION:
                raise InvalidArgument(f"unsupported feature spec version (this mlharbor reads {SPEC_VERSION})")
            return cls(
                lookups=[LookupSpec(**lk) for lk in raw["lookups"]],
                input_columns=[Column(**c) for c in raw["input_columns"]],
                output_columns=[Column(**c) for c in raw["output_columns"]],
                label=raw.get("label"),
                exclude_columns=list(raw.get("exclude_columns", [])),
                functions=[FunctionSpec(**f) for f in raw.get("functions", [])],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"not a feature spec: {exc}") from None
