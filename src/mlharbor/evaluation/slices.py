"""Turning slice definitions into row masks over the evaluation frame.

Two forms:

* ``{"long_trips": "trip_distance_km > 10"}``: named pandas expressions, evaluated with
  ``DataFrame.eval`` over the frame's columns only (no ``@variables``, no dunder attributes);
* ``["payment_type"]``: one slice per distinct value of each column, named ``"payment_type=card"``
  (missing values form the slice ``"payment_type=null"``), in sorted value order.

Masks are positional: row ``i`` of the frame is row ``i`` of ``y_true``/``y_pred``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlharbor.errors import InvalidArgument

MAX_VALUES_PER_COLUMN = 100


@dataclass(frozen=True)
class SliceMask:
    """One slice: its name, how it was defined, and which rows it holds."""

    name: str
    definition: str
    mask: np.ndarray[Any, Any]


def resolve_slices(
    data: pd.DataFrame | None, slices: Mapping[str, str] | Sequence[str] | None, rows: int
) -> list[SliceMask]:
    """The slices in definition order; InvalidArgument on a bad expression or an unknown column.

    ``data`` must have ``rows`` rows when slices are given.
    """
    if not slices:
        return []
    frame = require_frame(data, rows, "slices")
    if isinstance(slices, Mapping):
        return [_query_slice(frame, str(name), expr) for name, expr in slices.items()]
    if isinstance(slices, str):
        raise InvalidArgument("slices must be a dict of name → query expression or a list of column names, not a str")
    out: list[SliceMask] = []
    for column in slices:
        out.extend(column_slices(frame, column))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"slice names collide: {sorted({n for n in names if names.count(n) > 1})}")
    return out


def require_frame(data: pd.DataFrame | None, rows: int, what: str) -> pd.DataFrame:
    """``data`` with a fresh positional index; InvalidArgument if missing or of the wrong length."""
    if data is None:
        raise InvalidArgument(f"{what} need the evaluation frame: pass data=<DataFrame with one row per prediction>")
    if not isinstance(data, pd.DataFrame):
        raise InvalidArgument(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) != rows:
        raise InvalidArgument(
            f"data has {len(data)} rows but y_true has {rows}: pass the frame the predictions came from"
        )
    return data.reset_index(drop=True)


def _query_slice(frame: pd.DataFrame, name: str, expr: Any) -> SliceMask:
    if not name:
        raise InvalidArgument("slice names must be non-empty")
    if not isinstance(expr, str) or not expr.strip():
        raise InvalidArgument(f"slice {name!r}: the definition must be a non-empty query expression string")
    if "__" in expr or "@" in expr:
        raise InvalidArgument(f"slice {name!r}: expressions may use column names only (no '@' or '__'): {expr!r}")
    try:
        result = frame.eval(expr, local_dict={}, global_dict={})
    except Exception as exc:
        raise InvalidArgument(
            f"slice {name!r}: cannot evaluate {expr!r} ({type(exc).__name__}: {exc}); "
            f"columns are {list(frame.columns)[:30]}"
        ) from exc
    if not isinstance(result, pd.Series) or result.dtype != bool or len(result) != len(frame):
        raise InvalidArgument(f"slice {name!r}: {expr!r} must be a condition giving True/False per row")
    return SliceMask(name, expr, result.to_numpy(dtype=bool))


def column_slices(frame: pd.DataFrame, column: Any) -> list[SliceMask]:
    """One slice per distinct value of ``column`` (missing values included as ``column=null``)."""
    if not isinstance(column, str) or column not in frame.columns:
        raise InvalidArgument(f"unknown slice column {column!r}; columns are {list(frame.columns)[:30]}")
    values = frame[column]
    missing = values.isna().to_numpy()
    distinct = pd.unique(values[~missing])
    if len(distinct) > MAX_VALUES_PER_COLUMN:
        raise InvalidArgument(
            f"column {column!r} has {len(distinct)} distinct values (more than {MAX_VALUES_PER_COLUMN}); "
            f"slice it with query expressions instead"
        )
    plain = [v.item() if isinstance(v, np.generic) else v for v in distinct]
    try:
        ordered = sorted(plain)
    except TypeError:
        ordered = sorted(plain, key=str)
    present = values.to_numpy()
    out = [SliceMask(f"{column}={value}", f"{column} == {value!r}", (present == value) & ~missing) for value in ordered]
    if missing.any():
        out.append(SliceMask(f"{column}=null", f"{column} is null", missing))
    return out
