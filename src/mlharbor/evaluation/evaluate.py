"""``evaluate_predictions``: metrics overall and per slice, thresholds vs a baseline, fairness.

A pure computation over arrays and a frame: it loads no model and writes nothing. The workspace
wires it as ``ws.evaluate(...)`` (predicting with the candidate and the champion first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mlharbor.errors import InvalidArgument
from mlharbor.evaluation.fairness import fairness_reports
from mlharbor.evaluation.metrics import CustomMetric, builtin_metric_names, compute_metrics
from mlharbor.evaluation.predictions import Predictions, prepare
from mlharbor.evaluation.result import CheckOutcome, EvaluationResult, SliceResult
from mlharbor.evaluation.slices import SliceMask, require_frame, resolve_slices
from mlharbor.evaluation.thresholds import Threshold, run_checks


def evaluate_predictions(
    y_true: Any,
    y_pred: Any,
    problem_type: str,
    data: pd.DataFrame | None = None,
    slices: Mapping[str, str] | Sequence[str] | None = None,
    thresholds: Mapping[str, Threshold] | None = None,
    baseline: EvaluationResult | None = None,
    custom_metrics: Mapping[str, CustomMetric] | None = None,
    sensitive_columns: Sequence[str] | None = None,
    min_slice_rows: int = 20,
) -> EvaluationResult:
    """Score predictions, check thresholds against ``baseline`` and decide the blessing.

    * ``y_pred``: labels, a 1-D positive-class score/probability, or an ``(n, k)`` probability
      matrix (see :mod:`mlharbor.evaluation.predictions` for how the kind is told apart);
    * ``data``: the evaluation frame, row ``i`` matching ``y_true[i]``; needed for ``slices`` and
      ``sensitive_columns``;
    * ``slices``: ``{name: query expression}`` or column names (one slice per distinct value);
      slices with fewer than ``min_slice_rows`` rows are reported as skipped, without metrics;
    * ``thresholds``: metric name → :class:`Threshold`; ``blessed`` is True when no check fails
      (checks that cannot run — no baseline, metric not computable — are skipped with a reason);
    * ``baseline``: the champion's result on the same data, computed the same way;
    * ``custom_metrics``: name → ``fn(y_true, y_pred) -> float``, run overall and per slice; their
      exceptions become UserCodeError;
    * ``sensitive_columns``: per-group metrics and the largest gap per metric (groups below
      ``min_slice_rows`` are skipped).

    Raises InvalidArgument on bad input (unknown problem type, length mismatch, unknown slice
    column, bad expression, threshold on an unknown metric, baseline of another problem type).
    """
    if isinstance(min_slice_rows, bool) or not isinstance(min_slice_rows, int) or min_slice_rows < 1:
        raise InvalidArgument(f"min_slice_rows must be a positive integer, not {min_slice_rows!r}")
    preds = prepare(y_true, y_pred, problem_type)
    customs = _validate_custom(custom_metrics, problem_type)
    if baseline is not None:
        _validate_baseline(baseline, problem_type)
    masks = resolve_slices(data, slices, preds.rows)
    known = set(builtin_metric_names(problem_type)) | set(customs)
    for metric in thresholds or {}:
        if metric not in known:
            raise InvalidArgument(f"threshold on unknown metric {metric!r}; metrics are {sorted(known)}")

    def score(mask: SliceMask) -> SliceResult:
        return _score_slice(preds, mask, customs, min_slice_rows)

    overall = compute_metrics(preds, customs)
    slice_results = {mask.name: score(mask) for mask in masks}
    fairness = {}
    if sensitive_columns:
        fairness = fairness_reports(require_frame(data, preds.rows, "sensitive_columns"), sensitive_columns, score)
    checks = run_checks(thresholds or {}, overall.values, overall.omitted, slice_results, baseline, known)
    blessed = all(check.passed is not False for check in checks)
    return EvaluationResult(
        problem_type=problem_type,
        rows=preds.rows,
        metrics=overall.values,
        slices=slice_results,
        checks=tuple(checks),
        blessed=blessed,
        reasons=tuple(_reasons(checks, blessed, baseline, preds.rows)),
        fairness=fairness,
        omitted=overall.omitted,
        prediction_kind=preds.kind,
    )


def _score_slice(
    preds: Predictions, mask: SliceMask, customs: Mapping[str, CustomMetric], min_rows: int
) -> SliceResult:
    rows = int(mask.mask.sum())
    if rows < min_rows:
        return SliceResult(mask.definition, rows, skipped=f"{rows} rows < min_slice_rows {min_rows}")
    metrics = compute_metrics(preds.subset(mask.mask), customs)
    return SliceResult(mask.definition, rows, metrics.values, metrics.omitted)


def _validate_custom(custom_metrics: Mapping[str, CustomMetric] | None, problem_type: str) -> dict[str, CustomMetric]:
    customs = dict(custom_metrics or {})
    builtin = set(builtin_metric_names(problem_type))
    for name, fn in customs.items():
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"custom metric names must be non-empty strings, not {name!r}")
        if name in builtin:
            raise InvalidArgument(f"custom metric {name!r} clashes with a built-in metric; rename it")
        if not callable(fn):
            raise InvalidArgument(f"custom metric {name!r} must be a callable fn(y_true, y_pred) -> float")
    return customs


def _validate_baseline(baseline: EvaluationResult, problem_type: str) -> None:
    if not isinstance(baseline, EvaluationResult):
        raise InvalidArgument(f"baseline must be an EvaluationResult, not {type(baseline).__name__}")
    if baseline.problem_type != problem_type:
        raise InvalidArgument(
            f"baseline is a {baseline.problem_type} evaluation but this one is {problem_type}: compare like with like"
        )


def _reasons(checks: list[CheckOutcome], blessed: bool, baseline: EvaluationResult | None, rows: int) -> list[str]:
    reasons = [check.reason for check in checks]
    if baseline is not None and baseline.rows != rows:
        reasons.append(f"note: baseline was evaluated on {baseline.rows} rows, this model on {rows}")
    failed = sum(check.passed is False for check in checks)
    skipped = sum(check.passed is None for check in checks)
    if not checks:
        reasons.append("blessed: no thresholds were set")
    elif blessed:
        reasons.append(f"blessed: {len(checks) - skipped} of {len(checks)} checks passed, {skipped} skipped")
    else:
        reasons.append(f"not blessed: {failed} of {len(checks)} checks failed")
    return reasons
