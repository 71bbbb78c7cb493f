"""Model evaluation: metrics overall and per slice, value and change thresholds against a
baseline (the champion), blessing, fairness gaps and SHAP explanations.

Pure computations over predictions and frames; the workspace wires :func:`evaluate_predictions`
as ``ws.evaluate(...)``.
"""

from mlharbor.evaluation.evaluate import evaluate_predictions
from mlharbor.evaluation.explain import explain
from mlharbor.evaluation.result import CheckOutcome, EvaluationResult, FairnessReport, MetricGap, SliceResult
from mlharbor.evaluation.thresholds import Threshold, is_higher_better

__all__ = [
    "CheckOutcome",
    "EvaluationResult",
    "FairnessReport",
    "MetricGap",
    "SliceResult",
    "Threshold",
    "evaluate_predictions",
    "explain",
    "is_higher_better",
]
