"""Fairness: the same metrics per group of a sensitive column, and the largest gap between groups."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd

from mlharbor.errors import InvalidArgument
from mlharbor.evaluation.result import FairnessReport, MetricGap, SliceResult
from mlharbor.evaluation.slices import SliceMask, column_slices

ScoreSlice = Callable[[SliceMask], SliceResult]


def fairness_reports(
    frame: pd.DataFrame, sensitive_columns: Sequence[str], score: ScoreSlice
) -> dict[str, FairnessReport]:
    """One report per column: each group (distinct value) scored with ``score``, then the gaps.

    ``score`` applies the same metric and ``min_slice_rows`` rules as for slices; groups it
    skips take no part in the gaps. InvalidArgument on an unknown column.
    """
    if isinstance(sensitive_columns, str):
        raise InvalidArgument("sensitive_columns must be a list of column names, not a str")
    reports: dict[str, FairnessReport] = {}
    for column in sensitive_columns:
        groups: dict[str, SliceResult] = {}
        for mask in column_slices(frame, column):
            groups[mask.name.removeprefix(f"{column}=")] = score(mask)
        reports[column] = FairnessReport(column, groups, metric_gaps(groups))
    return reports


def metric_gaps(groups: dict[str, SliceResult]) -> dict[str, MetricGap]:
    """Per metric present in at least two scored groups: max minus min, and which groups they are."""
    by_metric: dict[str, list[tuple[float, str]]] = {}
    for name, group in groups.items():
        for metric, value in group.metrics.items():
            by_metric.setdefault(metric, []).append((value, name))
    gaps: dict[str, MetricGap] = {}
    for metric, entries in by_metric.items():
        if len(entries) < 2:
            continue
        high_value, high_group = max(entries)
        low_value, low_group = min(entries)
        gaps[metric] = MetricGap(high_value - low_value, high_group, high_value, low_group, low_value)
    return gaps
