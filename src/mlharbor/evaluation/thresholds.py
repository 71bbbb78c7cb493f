"""Value and change thresholds, and applying them to an evaluation (TFX-style blessing).

Direction: ``rmse``, ``mae``, ``log_loss``, ``mape``, ``max_error`` and any metric whose name ends
in ``loss`` or ``error`` are lower-is-better; every other metric is higher-is-better unless
``Threshold.higher_is_better`` says otherwise.

Change thresholds compare with the baseline (the champion on the same data) as an *improvement in
the better direction*: ``candidate - baseline`` for higher-is-better, ``baseline - candidate`` for
lower-is-better; the relative form divides by ``|baseline|``. So ``min_absolute_change=0.0`` means
"no worse than the champion" and ``-0.01`` tolerates a regression of 0.01.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlharbor.errors import InvalidArgument
from mlharbor.evaluation.result import CheckKind, CheckOutcome, SliceResult

if TYPE_CHECKING:
    from mlharbor.evaluation.result import EvaluationResult

LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss", "mape", "max_error"})
_VALUE_RULES = ("min_value", "max_value")
_CHANGE_RULES = ("min_absolute_change", "min_relative_change")


def is_higher_better(metric: str, override: bool | None = None) -> bool:
    """The direction of ``metric``: ``override`` if given, else inferred from the name."""
    if override is not None:
        return override
    return not (metric in LOWER_IS_BETTER or metric.endswith(("loss", "error")))


@dataclass(frozen=True)
class Threshold:
    """Rules one metric must meet for the candidate to be blessed.

    * ``min_value``/``max_value``: bounds on the metric itself;
    * ``min_absolute_change``/``min_relative_change``: the least improvement over the baseline
      (see the module docstring); skipped, with a reason, when there is no baseline;
    * ``higher_is_better``: overrides the direction inferred from the metric name;
    * ``slices``: also apply the rules to every slice (True) or to the named slices.
    """

    min_value: float | None = None
    max_value: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    higher_is_better: bool | None = None
    slices: bool | Sequence[str] = False

    def __post_init__(self) -> None:
        rules = {rule: getattr(self, rule) for rule in _VALUE_RULES + _CHANGE_RULES}
        if all(v is None for v in rules.values()):
            raise InvalidArgument(
                "a Threshold needs at least one of min_value, max_value, min_absolute_change, min_relative_change"
            )
        for rule, value in rules.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise InvalidArgument(f"Threshold.{rule} must be a number, not {value!r}")
            if value is not None and not math.isfinite(value):
                raise InvalidArgument(f"Threshold.{rule} must be finite, not {value!r}")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            raise InvalidArgument(f"Threshold.min_value {self.min_value} is above max_value {self.max_value}")
        if self.higher_is_better is not None and not isinstance(self.higher_is_better, bool):
            raise InvalidArgument("Threshold.higher_is_better must be True, False or None")
        if isinstance(self.slices, str) or not isinstance(self.slices, (bool, Sequence)):
            raise InvalidArgument("Threshold.slices must be True/False or a list of slice names")
        if not isinstance(self.slices, bool):
            object.__setattr__(self, "slices", tuple(self.slices))

    def slice_names(self, available: Sequence[str]) -> list[str]:
        """The slices these rules apply to; InvalidArgument if a named slice does not exist."""
        if self.slices is True:
            return list(available)
        if self.slices is False:
            return []
        unknown = [name for name in self.slices if name not in available]
        if unknown:
            raise InvalidArgument(f"Threshold.slices names unknown slices {unknown}; slices are {list(available)[:30]}")
        return list(self.slices)


def run_checks(
    thresholds: Mapping[str, Threshold],
    metrics: Mapping[str, float],
    omitted: Mapping[str, str],
    slices: Mapping[str, SliceResult],
    baseline: EvaluationResult | None,
    known_metrics: Collection[str],
) -> list[CheckOutcome]:
    """Every rule of every threshold, overall then per applicable slice, in threshold order.

    InvalidArgument when a threshold names a metric the evaluation cannot produce, or a slice
    that does not exist, or is not a :class:`Threshold`.
    """
    checks: list[CheckOutcome] = []
    for metric, threshold in thresholds.items():
        if not isinstance(threshold, Threshold):
            raise InvalidArgument(f"thresholds[{metric!r}] must be a Threshold, not {type(threshold).__name__}")
        if metric not in known_metrics:
            raise InvalidArgument(f"threshold on unknown metric {metric!r}; metrics are {sorted(known_metrics)}")
        scopes: list[tuple[str | None, Mapping[str, float], Mapping[str, str], str | None]] = [
            (None, metrics, omitted, None)
        ]
        for name in threshold.slice_names(list(slices)):
            part = slices[name]
            scopes.append((name, part.metrics, part.omitted, part.skipped))
        for slice_name, values, missing, skipped in scopes:
            check = _Check(metric, slice_name, threshold, values.get(metric))
            unavailable = _unavailable(check.label, metric, missing, skipped)
            checks.extend(check.value_checks(unavailable))
            checks.extend(check.change_checks(unavailable, baseline))
    return checks


def _unavailable(label: str, metric: str, missing: Mapping[str, str], skipped: str | None) -> str | None:
    if skipped is not None:
        return f"{label}: slice skipped ({skipped})"
    if metric in missing:
        return f"{label} was not computed ({missing[metric]})"
    return None


def _num(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class _Check:
    metric: str
    slice: str | None
    threshold: Threshold
    value: float | None

    @property
    def label(self) -> str:
        return self.metric if self.slice is None else f"{self.metric}[{self.slice}]"

    def _outcome(
        self, rule: str, passed: bool | None, observed: float | None, limit: float, base: float | None, reason: str
    ) -> CheckOutcome:
        kind: CheckKind = "value" if rule in _VALUE_RULES else "change"
        return CheckOutcome(self.metric, self.slice, kind, rule, passed, observed, limit, base, reason)

    def value_checks(self, unavailable: str | None) -> list[CheckOutcome]:
        out: list[CheckOutcome] = []
        for rule, limit, sign in (
            ("min_value", self.threshold.min_value, ">="),
            ("max_value", self.threshold.max_value, "<="),
        ):
            if limit is None:
                continue
            if unavailable is not None or self.value is None:
                reason = f"{unavailable or self.label + ' is not available'}: {rule} check skipped"
                out.append(self._outcome(rule, None, None, float(limit), None, reason))
                continue
            passed = self.value >= limit if sign == ">=" else self.value <= limit
            if passed:
                reason = f"{self.label} {_num(self.value)} {sign} {_num(limit)} (value threshold)"
            else:
                shown = {">=": "< min", "<=": "> max"}[sign]
                reason = f"{self.label} {_num(self.value)} {shown} {_num(limit)} (value threshold): not blessed"
            out.append(self._outcome(rule, passed, self.value, float(limit), None, reason))
        return out

    def change_checks(self, unavailable: str | None, baseline: EvaluationResult | None) -> list[CheckOutcome]:
        out: list[CheckOutcome] = []
        for rule in _CHANGE_RULES:
            limit = getattr(self.threshold, rule)
            if limit is None:
                continue
            base, skip = self._baseline_value(baseline)
            if skip is None and (unavailable is not None or self.value is None):
                skip = unavailable or f"{self.label} is not available"
            if skip is None and base is not None and rule == "min_relative_change" and base == 0:
                skip = f"{self.label}: relative change is undefined for a baseline of 0"
            if skip is not None or base is None or self.value is None:
                out.append(self._outcome(rule, None, None, float(limit), base, f"{skip}: {rule} check skipped"))
                continue
            out.append(self._compare_change(rule, float(limit), base, self.value))
        return out

    def _baseline_value(self, baseline: EvaluationResult | None) -> tuple[float | None, str | None]:
        if baseline is None:
            return None, f"no baseline (first model) for {self.label}"
        if self.slice is None:
            values = baseline.metrics
        else:
            part = baseline.slices.get(self.slice)
            if part is None or part.skipped is not None:
                why = "has no" if part is None else "skipped"
                return None, f"baseline {why} slice {self.slice!r} for {self.label}"
            values = part.metrics
        if self.metric not in values:
            return None, f"baseline has no {self.label}"
        return values[self.metric], None

    def _compare_change(self, rule: str, limit: float, base: float, value: float) -> CheckOutcome:
        higher = is_higher_better(self.metric, self.threshold.higher_is_better)
        improvement = value - base if higher else base - value
        relative = rule == "min_relative_change"
        observed = improvement / abs(base) if relative else improvement
        passed = observed >= limit
        fmt = "{:+.2%}" if relative else "{:+.4g}"
        what = ("relative " if relative else "") + ("change" if higher else "improvement")
        context = (
            f"vs baseline {_num(base)}" if higher else f"(lower is better: {_num(value)} vs baseline {_num(base)})"
        )
        reason = (
            f"{self.label} {what} {fmt.format(observed)} {'>=' if passed else '<'} required {fmt.format(limit)} "
            f"{context}" + ("" if passed else ": not blessed")
        )
        return self._outcome(rule, passed, observed, limit, base, reason)
