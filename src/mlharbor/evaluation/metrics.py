"""Built-in and custom metrics over one set of rows (the whole evaluation set or one slice).

Built-in metric names:

* binary classification: ``accuracy``, ``precision``, ``recall``, ``f1``, ``positive_rate`` and,
  when scores or probabilities are given, ``roc_auc`` (and ``log_loss`` for probabilities);
* multiclass classification: ``accuracy``, ``f1_macro`` and, with probabilities, ``roc_auc_ovr``
  (one-vs-rest, macro average) and ``log_loss``;
* regression: ``rmse``, ``mae``, ``r2``, ``mape`` (rows where ``y_true == 0`` are left out),
  ``max_error``.

A metric that cannot be computed on the rows (one class present for ``roc_auc``, fewer than two
rows for ``r2``, every ``y_true`` zero for ``mape``) is left out of the values and its reason is
recorded in ``omitted``; it never raises.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlharbor.errors import UserCodeError
from mlharbor.evaluation.predictions import Predictions

CustomMetric = Callable[[Any, Any], float]

BINARY_METRICS = ("accuracy", "precision", "recall", "f1", "positive_rate", "roc_auc", "log_loss")
MULTICLASS_METRICS = ("accuracy", "f1_macro", "roc_auc_ovr", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "r2", "mape", "max_error")


def builtin_metric_names(problem_type: str) -> tuple[str, ...]:
    """Every built-in metric a problem type can produce (for validating thresholds and names)."""
    if problem_type == "regression":
        return REGRESSION_METRICS
    return tuple(dict.fromkeys(BINARY_METRICS + MULTICLASS_METRICS))


@dataclass
class MetricSet:
    """Metric values and, for metrics that could not be computed, the reason why."""

    values: dict[str, float] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: float) -> None:
        """Record ``value``; a NaN or infinite value is recorded as omitted instead."""
        number = float(value)
        if math.isfinite(number):
            self.values[name] = number
        else:
            self.omitted[name] = f"{name} is not finite ({number}) on these rows"


def compute_metrics(preds: Predictions, custom_metrics: Mapping[str, CustomMetric] | None = None) -> MetricSet:
    """All built-in metrics for ``preds``, then each custom metric called as ``fn(y_true, y_pred)``.

    Custom metrics receive numpy arrays: ``y_true`` and ``y_pred`` exactly as given (labels,
    scores or the probability matrix), restricted to the rows. An exception from a custom metric,
    or a return value that is not a real number, raises UserCodeError.
    """
    result = MetricSet()
    if preds.problem_type == "regression":
        _regression(preds, result)
    elif preds.is_binary:
        _binary(preds, result)
    else:
        _multiclass(preds, result)
    for name, fn in (custom_metrics or {}).items():
        result.put(name, _call_custom(name, fn, preds))
    return result


def _call_custom(name: str, fn: CustomMetric, preds: Predictions) -> float:
    where = f"custom metric {name}"
    try:
        value = fn(preds.y_true, preds.raw)
    except Exception as exc:
        raise UserCodeError.from_exception(exc, where) from exc
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserCodeError(f"{where} returned {value!r} ({type(value).__name__}); it must return a number")
    return float(value)


def _regression(preds: Predictions, out: MetricSet) -> None:
    from sklearn import metrics as skm

    y, p = preds.y_true, preds.labels
    out.put("rmse", math.sqrt(float(skm.mean_squared_error(y, p))))
    out.put("mae", float(skm.mean_absolute_error(y, p)))
    if preds.rows < 2:
        out.omitted["r2"] = "r2 needs at least 2 rows"
    elif np.all(y == y[0]):
        out.omitted["r2"] = "r2 is undefined when y_true is constant"
    else:
        out.put("r2", float(skm.r2_score(y, p)))
    nonzero = y != 0
    if nonzero.any():
        with np.errstate(over="ignore"):  # tiny targets overflow to inf, which put() records as omitted
            out.put("mape", float(np.mean(np.abs((y[nonzero] - p[nonzero]) / y[nonzero]))))
    else:
        out.omitted["mape"] = "mape is undefined: every y_true is 0"
    out.put("max_error", float(skm.max_error(y, p)))


def _binary(preds: Predictions, out: MetricSet) -> None:
    from sklearn import metrics as skm

    y, labels, positive = preds.y_true, preds.labels, preds.positive
    out.put("accuracy", float(skm.accuracy_score(y, labels)))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        out.put(name, float(fn(y, labels, pos_label=positive, labels=list(preds.classes), zero_division=0)))
    out.put("positive_rate", float(np.mean(labels == positive)))
    if preds.scores is None:
        for name in ("roc_auc", "log_loss"):
            out.omitted[name] = f"{name} needs scores or probabilities; y_pred holds labels"
        return
    is_positive = y == positive
    if is_positive.all() or not is_positive.any():
        out.omitted["roc_auc"] = "roc_auc is undefined: only one class is present in y_true"
    else:
        out.put("roc_auc", float(skm.roc_auc_score(is_positive, preds.scores)))
    if preds.kind == "probabilities":
        out.put("log_loss", float(skm.log_loss(is_positive, preds.scores, labels=[False, True])))
    else:
        out.omitted["log_loss"] = "log_loss needs probabilities in [0, 1]; y_pred holds unbounded scores"


def _multiclass(preds: Predictions, out: MetricSet) -> None:
    from sklearn import metrics as skm

    y, labels = preds.y_true, preds.labels
    out.put("accuracy", float(skm.accuracy_score(y, labels)))
    out.put("f1_macro", float(skm.f1_score(y, labels, average="macro", zero_division=0)))
    if preds.scores is None:
        for name in ("roc_auc_ovr", "log_loss"):
            out.omitted[name] = f"{name} needs an (n, k) probability matrix; y_pred holds labels"
        return
    classes = list(preds.classes)
    present = set(np.unique(y).tolist())
    if present != set(classes):
        out.omitted["roc_auc_ovr"] = (
            f"roc_auc_ovr needs every class in y_true; {len(present)} of {len(classes)} present"
        )
    else:
        out.put("roc_auc_ovr", float(skm.roc_auc_score(y, preds.scores, multi_class="ovr", labels=classes)))
    out.put("log_loss", float(skm.log_loss(y, preds.scores, labels=classes)))
