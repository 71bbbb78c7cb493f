"""Normalising ``y_true``/``y_pred`` and telling labels from scores and probabilities.

The kind of prediction is decided once on the whole evaluation set, so every slice is scored the
same way:

* ``labels``: every distinct value of ``y_pred`` is a class seen in ``y_true`` (or both are 0/1),
  or ``y_pred`` is not a float array;
* ``probabilities``: a 2-D ``(n, k)`` array whose rows sum to 1 (column ``j`` is the ``j``-th class
  in sorted order, as scikit-learn's ``classes_``), or a 1-D float array of positive-class
  probabilities in ``[0, 1]`` (binary only);
* ``scores``: a 1-D float array with values outside ``[0, 1]`` (a decision function; binary only).
  Labels are ``score >= 0`` and ``log_loss`` is not computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mlharbor.errors import InvalidArgument

PredictionKind = Literal["labels", "probabilities", "scores"]
_PROBABILITY_SUM_TOLERANCE = 1e-6


def as_array(values: Any, what: str) -> np.ndarray[Any, Any]:
    """``values`` as a numpy array (Series, lists, Arrow arrays…); InvalidArgument if it is not 1-D or 2-D."""
    if isinstance(values, (pd.Series, pd.DataFrame)):
        array = values.to_numpy()
    elif hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        array = np.asarray(values.to_numpy())
    else:
        array = np.asarray(values)
    if array.ndim not in (1, 2):
        raise InvalidArgument(f"{what} must be 1-D (or 2-D probabilities for y_pred); got {array.ndim} dimensions")
    return array


def _has_missing(array: np.ndarray[Any, Any]) -> bool:
    return bool(pd.isna(array).any())


@dataclass(frozen=True)
class Predictions:
    """Targets and predictions in one shape, ready for metrics.

    ``labels`` is always set (predicted classes for classification, predicted values for
    regression). ``scores`` is the positive-class score (1-D) for binary problems or the ``(n, k)``
    probability matrix for multiclass ones, or None when only labels were given. ``raw`` is
    ``y_pred`` exactly as given, handed to custom metrics.
    """

    problem_type: str
    kind: PredictionKind
    y_true: np.ndarray[Any, Any]
    labels: np.ndarray[Any, Any]
    scores: np.ndarray[Any, Any] | None
    raw: np.ndarray[Any, Any]
    classes: tuple[Any, ...] = ()

    @property
    def rows(self) -> int:
        return len(self.y_true)

    @property
    def is_binary(self) -> bool:
        return self.problem_type == "classification" and len(self.classes) <= 2

    @property
    def positive(self) -> Any:
        """The positive class of a binary problem: 1 when classes are 0/1, else the larger class."""
        return self.classes[-1]

    def subset(self, mask: np.ndarray[Any, Any]) -> Predictions:
        """The rows where the boolean ``mask`` is True; classes and kind are kept."""
        return Predictions(
            problem_type=self.problem_type,
            kind=self.kind,
            y_true=self.y_true[mask],
            labels=self.labels[mask],
            scores=None if self.scores is None else self.scores[mask],
            raw=self.raw[mask],
            classes=self.classes,
        )


def prepare(y_true: Any, y_pred: Any, problem_type: str) -> Predictions:
    """Validate the inputs and decide the prediction kind (see the module docstring).

    Raises InvalidArgument on an unknown problem type, empty input, a length mismatch, missing
    values, or predictions whose shape does not fit the classes.
    """
    if problem_type not in ("classification", "regression"):
        raise InvalidArgument(f"problem_type must be 'classification' or 'regression', not {problem_type!r}")
    truth = as_array(y_true, "y_true")
    pred = as_array(y_pred, "y_pred")
    if truth.ndim != 1:
        raise InvalidArgument(f"y_true must be 1-D; got shape {truth.shape}")
    if len(truth) == 0:
        raise InvalidArgument("y_true is empty: evaluation needs at least one row")
    if len(pred) != len(truth):
        raise InvalidArgument(f"y_true has {len(truth)} rows but y_pred has {len(pred)}: pass one prediction per row")
    for name, array in (("y_true", truth), ("y_pred", pred)):
        if _has_missing(array):
            raise InvalidArgument(f"{name} has missing values (NaN/None): drop or fill those rows before evaluating")
    if problem_type == "regression":
        return _prepare_regression(truth, pred)
    return _prepare_classification(truth, pred)


def _prepare_regression(truth: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]) -> Predictions:
    if pred.ndim != 1:
        raise InvalidArgument(f"regression y_pred must be 1-D; got shape {pred.shape}")
    for name, array in (("y_true", truth), ("y_pred", pred)):
        if array.dtype.kind not in "iufb":
            raise InvalidArgument(f"regression {name} must be numeric; got dtype {array.dtype}")
    truth_f, pred_f = truth.astype(float), pred.astype(float)
    if not (np.isfinite(truth_f).all() and np.isfinite(pred_f).all()):
        raise InvalidArgument("regression y_true and y_pred must be finite numbers (no inf)")
    return Predictions("regression", "labels", truth_f, pred_f, None, pred_f)


def _sorted_classes(values: np.ndarray[Any, Any], what: str) -> list[Any]:
    try:
        return [v.item() if isinstance(v, np.generic) else v for v in np.unique(values)]
    except TypeError as exc:
        raise InvalidArgument(f"{what} mixes label types that cannot be ordered ({exc}); use one type") from exc


def _is_zero_one(classes: list[Any]) -> bool:
    return all(isinstance(c, (bool, int, float)) and c in (0, 1) for c in classes)


def _prepare_classification(truth: np.ndarray[Any, Any], pred: np.ndarray[Any, Any]) -> Predictions:
    true_classes = _sorted_classes(truth, "y_true")
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.ndim == 2:
        return _from_probability_matrix(truth, pred, true_classes)
    pred_values = _sorted_classes(pred, "y_pred")
    binary_01 = _is_zero_one(true_classes)
    is_labels = set(pred_values) <= set(true_classes) or (binary_01 and _is_zero_one(pred_values))
    if pred.dtype.kind != "f" or is_labels:
        classes = _sorted_classes(np.concatenate([truth.astype(object), pred.astype(object)]), "y_true and y_pred")
        if _is_zero_one(classes):
            classes = [0, 1]
        return Predictions("classification", "labels", truth, pred, None, pred, tuple(classes))
    return _from_score_vector(truth, pred, true_classes)


def _from_score_vector(truth: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], true_classes: list[Any]) -> Predictions:
    if _is_zero_one(true_classes):
        classes = [0, 1]
    elif len(true_classes) == 2:
        classes = true_classes
    else:
        raise InvalidArgument(
            f"1-D float y_pred is read as a positive-class score, which needs a binary target; y_true has "
            f"{len(true_classes)} classes {true_classes[:10]}: pass labels or an (n, k) probability matrix"
        )
    kind: PredictionKind = "probabilities" if bool(((pred >= 0) & (pred <= 1)).all()) else "scores"
    cut = 0.5 if kind == "probabilities" else 0.0
    labels = np.where(pred >= cut, classes[1], classes[0])
    return Predictions("classification", kind, truth, labels, pred.astype(float), pred, tuple(classes))


def _from_probability_matrix(
    truth: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], true_classes: list[Any]
) -> Predictions:
    width = pred.shape[1]
    if pred.dtype.kind not in "iuf":
        raise InvalidArgument(f"2-D y_pred must hold numeric class probabilities; got dtype {pred.dtype}")
    probabilities = pred.astype(float)
    if not bool(((probabilities >= 0) & (probabilities <= 1)).all()) or not np.allclose(
        probabilities.sum(axis=1), 1.0, atol=_PROBABILITY_SUM_TOLERANCE
    ):
        raise InvalidArgument("2-D y_pred must be class probabilities: values in [0, 1] and each row summing to 1")
    if len(true_classes) == width:
        classes = true_classes
    elif truth.dtype.kind in "iu" and all(0 <= c < width for c in true_classes):
        classes = list(range(width))
    else:
        raise InvalidArgument(
            f"y_pred has {width} probability columns but y_true has {len(true_classes)} classes "
            f"{true_classes[:10]}; columns must match the sorted classes (or integer classes 0..{width - 1})"
        )
    if width == 2:  # the same cut as a 1-D positive-class probability, ties going to the positive class
        labels = np.where(probabilities[:, 1] >= 0.5, classes[1], classes[0]).astype(object)
    else:
        labels = np.asarray(classes, dtype=object)[probabilities.argmax(axis=1)]
    if truth.dtype.kind != "O":
        labels = labels.astype(truth.dtype)
    scores = probabilities[:, 1] if width == 2 else probabilities
    return Predictions("classification", "probabilities", truth, labels, scores, pred, tuple(classes))
