"""What users declare: feature lookups and on-demand feature functions (Databricks' contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from mlharbor.core.names import parse_name
from mlharbor.errors import InvalidArgument


def _as_list(value: str | list[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise InvalidArgument(f"{what} must be a column name or a non-empty list of column names")
    return items


@dataclass(frozen=True)
class FeatureLookup:
    """Features looked up from a feature table for each row of a training or scoring frame.

    * ``lookup_key``: the frame's column(s) matched to the table's primary keys, in order;
    * ``feature_names``: the features to bring (default: every column but keys and timestamp);
    * ``rename_outputs``: feature name → output column name;
    * ``timestamp_lookup_key``: the frame's column with each row's point in time. For a time-series
      table the row gets the latest feature row at or before that time (inclusive); without it,
      the latest row per key;
    * ``lookback_window``: only feature rows at most this old relative to the lookup time;
    * ``default_values``: output column → value used when nothing matches.
    """

    table_name: str
    lookup_key: str | list[str]
    feature_names: list[str] | None = None
    rename_outputs: dict[str, str] = field(default_factory=dict)
    timestamp_lookup_key: str | None = None
    lookback_window: timedelta | None = None
    default_values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parse_name(self.table_name, "feature table name")
        _as_list(self.lookup_key, "lookup_key")
        if self.feature_names is not None:
            _as_list(self.feature_names, "feature_names")
        if self.lookback_window is not None and (
            not isinstance(self.lookback_window, timedelta) or self.lookback_window <= timedelta(0)
        ):
            raise InvalidArgument("lookback_window must be a positive timedelta")
        if self.lookback_window is not None and self.timestamp_lookup_key is None:
            raise InvalidArgument("lookback_window needs timestamp_lookup_key")

    @property
    def keys(self) -> list[str]:
        return _as_list(self.lookup_key, "lookup_key")


@dataclass(frozen=True)
class FeatureFunction:
    """An on-demand feature: a registered Python function applied to columns of the frame.

    ``udf_name`` is the function's catalog name (``catalog.schema.fn``), ``version`` a registered
    version (default: the latest, pinned in the spec when the training set is made);
    ``input_bindings`` maps the function's parameters to columns of the frame or of looked-up
    features; ``output_name`` names the result column. The same registered code runs in training,
    batch scoring and serving.
    """

    udf_name: str
    input_bindings: dict[str, str]
    output_name: str
    version: int | None = None

    def __post_init__(self) -> None:
        parse_name(self.udf_name, "function name")
        if not self.input_bindings or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.input_bindings.items()
        ):
            raise InvalidArgument("input_bindings must map parameter names to column names")
        if not isinstance(self.output_name, str) or not self.output_name:
            raise InvalidArgument("output_name must be a non-empty column name")
        if self.version is not None and (not isinstance(self.version, int) or self.version < 1):
            raise InvalidArgument("version must be a positive integer (or None for the latest)")
