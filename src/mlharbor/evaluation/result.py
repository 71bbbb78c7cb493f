"""What an evaluation returns: plain frozen dataclasses that round-trip through JSON.

``EvaluationResult.to_dict()`` gives only JSON types (str, float, int, bool, None, lists, dicts);
``EvaluationResult.from_dict(result.to_dict()) == result`` always holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlharbor.errors import InvalidArgument

CheckKind = Literal["value", "change"]


@dataclass(frozen=True)
class SliceResult:
    """Metrics of one slice (or one fairness group).

    ``skipped`` is the reason the slice was not scored (too few rows), in which case ``metrics``
    is empty. ``omitted`` maps a metric that could not be computed on these rows to the reason.
    """

    definition: str
    rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": self.definition,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "omitted": dict(self.omitted),
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceResult:
        return cls(
            definition=str(data["definition"]),
            rows=int(data["rows"]),
            metrics={str(k): float(v) for k, v in data.get("metrics", {}).items()},
            omitted={str(k): str(v) for k, v in data.get("omitted", {}).items()},
            skipped=data.get("skipped"),
        )


@dataclass(frozen=True)
class CheckOutcome:
    """One threshold rule applied to one metric, overall (``slice`` None) or on one slice.

    ``rule`` is ``min_value``, ``max_value``, ``min_absolute_change`` or ``min_relative_change``;
    ``kind`` is ``value`` or ``change``. ``passed`` is None when the check was skipped (``reason``
    says why). For change checks ``observed`` is the improvement over the baseline in the metric's
    better direction (absolute, or relative to ``|baseline|``) and ``baseline`` the champion's value.
    """

    metric: str
    slice: str | None
    kind: CheckKind
    rule: str
    passed: bool | None
    observed: float | None
    limit: float
    baseline: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "slice": self.slice,
            "kind": self.kind,
            "rule": self.rule,
            "passed": self.passed,
            "observed": self.observed,
            "limit": self.limit,
            "baseline": self.baseline,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckOutcome:
        kind = data["kind"]
        if kind not in ("value", "change"):
            raise InvalidArgument(f"check kind must be 'value' or 'change', not {kind!r}")
        return cls(
            metric=str(data["metric"]),
            slice=data.get("slice"),
            kind=kind,
            rule=str(data["rule"]),
            passed=data.get("passed"),
            observed=_optional_float(data.get("observed")),
            limit=float(data["limit"]),
            baseline=_optional_float(data.get("baseline")),
            reason=str(data["reason"]),
        )


@dataclass(frozen=True)
class MetricGap:
    """The spread of one metric across the groups of a sensitive column."""

    gap: float
    max_group: str
    max_value: float
    min_group: str
    min_value: float


@dataclass(frozen=True)
class FairnessReport:
    """Per-group metrics of one sensitive column and, per metric, the max gap between groups.

    Groups with fewer than ``min_slice_rows`` rows are reported as skipped and take no part in the
    gaps; a metric appears in ``gaps`` only when at least two groups have it.
    """

    column: str
    groups: dict[str, SliceResult]
    gaps: dict[str, MetricGap]

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "groups": {name: group.to_dict() for name, group in self.groups.items()},
            "gaps": {name: vars(gap).copy() for name, gap in self.gaps.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FairnessReport:
        return cls(
            column=str(data["column"]),
            groups={str(k): SliceResult.from_dict(v) for k, v in data["groups"].items()},
            gaps={
                str(k): MetricGap(
                    gap=float(v["gap"]),
                    max_group=str(v["max_group"]),
                    max_value=float(v["max_value"]),
                    min_group=str(v["min_group"]),
                    min_value=float(v["min_value"]),
                )
                for k, v in data["gaps"].items()
            },
        )


@dataclass(frozen=True)
class EvaluationResult:
    """The outcome of :func:`mlharbor.evaluation.evaluate_predictions`.

    * ``metrics``/``omitted``: overall metric values, and reasons for metrics that could not be computed;
    * ``slices``: slice name → :class:`SliceResult`;
    * ``checks``: every threshold rule applied, in threshold order, overall before slices;
    * ``blessed``: True when no check failed (skipped checks do not block);
    * ``reasons``: one human-readable line per check, then the decision;
    * ``fairness``: sensitive column → :class:`FairnessReport`;
    * ``prediction_kind``: how ``y_pred`` was read (``labels``, ``probabilities`` or ``scores``).
    """

    problem_type: str
    rows: int
    metrics: dict[str, float]
    slices: dict[str, SliceResult]
    checks: tuple[CheckOutcome, ...]
    blessed: bool
    reasons: tuple[str, ...]
    fairness: dict[str, FairnessReport] = field(default_factory=dict)
    omitted: dict[str, str] = field(default_factory=dict)
    prediction_kind: str = "labels"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (see :meth:`from_dict`)."""
        return {
            "problem_type": self.problem_type,
            "rows": self.rows,
            "prediction_kind": self.prediction_kind,
            "metrics": dict(self.metrics),
            "omitted": dict(self.omitted),
            "slices": {name: s.to_dict() for name, s in self.slices.items()},
            "checks": [c.to_dict() for c in self.checks],
            "blessed": self.blessed,
            "reasons": list(self.reasons),
            "fairness": {name: f.to_dict() for name, f in self.fairness.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        """Rebuild a result from :meth:`to_dict` output; InvalidArgument if a field is missing."""
        try:
            return cls(
                problem_type=str(data["problem_type"]),
                rows=int(data["rows"]),
                prediction_kind=str(data.get("prediction_kind", "labels")),
                metrics={str(k): float(v) for k, v in data["metrics"].items()},
                omitted={str(k): str(v) for k, v in data.get("omitted", {}).items()},
                slices={str(k): SliceResult.from_dict(v) for k, v in data.get("slices", {}).items()},
                checks=tuple(CheckOutcome.from_dict(c) for c in data.get("checks", [])),
                blessed=bool(data["blessed"]),
                reasons=tuple(str(r) for r in data.get("reasons", [])),
                fairness={str(k): FairnessReport.from_dict(v) for k, v in data.get("fairness", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"not an evaluation result dict: {exc!r}") from exc


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
