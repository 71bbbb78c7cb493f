"""The evaluation subsystem: metrics, slices, thresholds and blessing, fairness, explanations."""

from __future__ import annotations

import json
import math
import sys
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mlharbor.errors import InvalidArgument, MissingDependency, UserCodeError
from mlharbor.evaluation import (
    EvaluationResult,
    Threshold,
    evaluate_predictions,
    explain,
    is_higher_better,
)

# ---------------------------------------------------------------- fixed data

Y_BIN = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0])
P_BIN = np.array([0.1, 0.8, 0.4, 0.3, 0.9, 0.6, 0.7, 0.55, 0.2, 0.45])


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "trip_distance_km": rng.uniform(0, 20, n),
            "payment_type": rng.choice(["card", "cash", "app"], n),
        }
    )


def _binary_data(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1)
    return y, p


# ---------------------------------------------------------------- metrics


def test_binary_label_metrics_match_sklearn() -> None:
    labels = (P_BIN >= 0.5).astype(int)
    result = evaluate_predictions(Y_BIN, labels, "classification")
    assert result.prediction_kind == "labels"
    assert result.rows == 10
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(Y_BIN, labels))
    assert result.metrics["precision"] == pytest.approx(skm.precision_score(Y_BIN, labels))
    assert result.metrics["recall"] == pytest.approx(skm.recall_score(Y_BIN, labels))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(Y_BIN, labels))
    assert result.metrics["positive_rate"] == pytest.approx(labels.mean())
    assert "roc_auc" not in result.metrics
    assert "labels" in result.omitted["roc_auc"]
    assert "log_loss" in result.omitted


def test_binary_probability_metrics_match_sklearn() -> None:
    result = evaluate_predictions(pd.Series(Y_BIN), pd.Series(P_BIN), "classification")
    labels = (P_BIN >= 0.5).astype(int)
    assert result.prediction_kind == "probabilities"
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(Y_BIN, P_BIN))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(Y_BIN, P_BIN))
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(Y_BIN, labels))
    assert result.metrics["f1"] == pytest.approx(skm.f1_score(Y_BIN, labels))


def test_two_column_probabilities_equal_positive_score() -> None:
    matrix = np.column_stack([1 - P_BIN, P_BIN])
    assert evaluate_predictions(Y_BIN, matrix, "classification").metrics == pytest.approx(
        evaluate_predictions(Y_BIN, P_BIN, "classification").metrics
    )


def test_unbounded_scores_give_roc_auc_but_no_log_loss() -> None:
    scores = (P_BIN - 0.5) * 10
    result = evaluate_predictions(Y_BIN, scores, "classification")
    assert result.prediction_kind == "scores"
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(Y_BIN, scores))
    assert "log_loss" not in result.metrics
    assert "unbounded" in result.omitted["log_loss"]
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(Y_BIN, scores >= 0))


def test_string_labels_use_sorted_second_class_as_positive() -> None:
    y = np.where(Y_BIN == 1, "yes", "no")
    result = evaluate_predictions(y, P_BIN, "classification")
    assert result.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(Y_BIN, P_BIN))
    pred = np.where(P_BIN >= 0.5, "yes", "no")
    assert result.metrics["precision"] == pytest.approx(skm.precision_score(y, pred, pos_label="yes"))


def test_multiclass_probabilities_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 60)
    proba = rng.dirichlet([1, 1, 1], 60)
    proba[np.arange(60), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    result = evaluate_predictions(y, proba, "classification")
    labels = proba.argmax(axis=1)
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert result.metrics["f1_macro"] == pytest.approx(skm.f1_score(y, labels, average="macro"))
    assert result.metrics["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert result.metrics["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert "precision" not in result.metrics


def test_multiclass_string_labels_give_accuracy_and_macro_f1() -> None:
    y = np.array(["a", "b", "c", "a", "b", "c", "a"])
    pred = np.array(["a", "b", "b", "a", "c", "c", "b"])
    result = evaluate_predictions(y, pred, "classification")
    assert result.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert result.metrics["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert "roc_auc_ovr" in result.omitted


def test_regression_metrics_match_sklearn_and_mape_skips_zero_targets() -> None:
    y = np.array([3.0, 0.0, 2.5, 7.0, 4.0, 0.0, 1.0])
    p = np.array([2.5, 0.3, 2.0, 8.0, 4.5, -0.2, 1.5])
    result = evaluate_predictions(y, p, "regression")
    assert result.metrics["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert result.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, p))
    assert result.metrics["r2"] == pytest.approx(skm.r2_score(y, p))
    assert result.metrics["max_error"] == pytest.approx(skm.max_error(y, p))
    by_hand = np.mean([0.5 / 3, 0.5 / 2.5, 1 / 7, 0.5 / 4, 0.5 / 1])
    assert result.metrics["mape"] == pytest.approx(by_hand)


def test_regression_all_zero_targets_omit_mape() -> None:
    result = evaluate_predictions([0.0, 0.0, 0.0], [0.1, 0.0, -0.1], "regression")
    assert "mape" not in result.metrics
    assert "every y_true is 0" in result.omitted["mape"]
    assert "constant" in result.omitted["r2"]


def test_single_class_omits_roc_auc_with_reason() -> None:
    result = evaluate_predictions([1, 1, 1, 1], [0.9, 0.8, 0.3, 0.7], "classification")
    assert "roc_auc" not in result.metrics
    assert "one class" in result.omitted["roc_auc"]
    assert result.metrics["accuracy"] == pytest.approx(0.75)
    assert "log_loss" in result.metrics


# ---------------------------------------------------------------- slices


def test_query_slices_score_the_matching_rows() -> None:
    y, p = _binary_data()
    frame = _frame(len(y))
    result = evaluate_predictions(y, p, "classification", data=frame, slices={"long_trips": "trip_distance_km > 10"})
    mask = (frame["trip_distance_km"] > 10).to_numpy()
    long_trips = result.slices["long_trips"]
    assert long_trips.rows == int(mask.sum())
    assert long_trips.definition == "trip_distance_km > 10"
    assert long_trips.skipped is None
    assert long_trips.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y[mask], p[mask]))
    assert long_trips.metrics["accuracy"] == pytest.approx(skm.accuracy_score(y[mask], p[mask] >= 0.5))


def test_column_slices_one_per_value_with_positional_rows() -> None:
    y, p = _binary_data(120)
    frame = _frame(120).set_index(pd.Index(np.arange(1000, 1120)))  # a non-default index must not matter
    result = evaluate_predictions(y, p, "classification", data=frame, slices=["payment_type"])
    assert list(result.slices) == ["payment_type=app", "payment_type=card", "payment_type=cash"]
    assert sum(s.rows for s in result.slices.values()) == 120
    card = (frame["payment_type"] == "card").to_numpy()
    assert result.slices["payment_type=card"].metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(y[card], p[card]))


def test_column_slices_include_missing_values() -> None:
    frame = pd.DataFrame({"region": ["n", None, "s", None, "n", "s"]})
    result = evaluate_predictions(
        [1.0, 2, 3, 4, 5, 6], [1.0, 2, 3, 4, 5, 7], "regression", data=frame, slices=["region"], min_slice_rows=1
    )
    assert result.slices["region=null"].rows == 2
    assert result.slices["region=s"].metrics["max_error"] == pytest.approx(1.0)


def test_small_slices_are_skipped_with_a_reason() -> None:
    y, p = _binary_data(100)
    frame = _frame(100)
    result = evaluate_predictions(
        y, p, "classification", data=frame, slices={"tiny": "trip_distance_km < 1", "all": "trip_distance_km >= 0"}
    )
    tiny = result.slices["tiny"]
    assert tiny.rows == int((frame["trip_distance_km"] < 1).sum()) < 20
    assert tiny.metrics == {}
    assert tiny.skipped == f"{tiny.rows} rows < min_slice_rows 20"
    assert result.slices["all"].skipped is None
    assert result.slices["all"].rows == 100


def test_slice_with_one_class_omits_roc_auc_instead_of_failing() -> None:
    frame = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 4})
    y = [1, 1, 1, 1, 0, 1, 0, 1]
    p = [0.9, 0.2, 0.8, 0.7, 0.1, 0.6, 0.4, 0.3]
    result = evaluate_predictions(y, p, "classification", data=frame, slices=["g"], min_slice_rows=1)
    assert "roc_auc" in result.slices["g=a"].omitted
    assert result.slices["g=b"].metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score([0, 1, 0, 1], [0.1, 0.6, 0.4, 0.3])
    )


# ---------------------------------------------------------------- thresholds


def test_value_thresholds_bless_and_block() -> None:
    ok = evaluate_predictions(Y_BIN, P_BIN, "classification", thresholds={"roc_auc": Threshold(min_value=0.75)})
    auc = skm.roc_auc_score(Y_BIN, P_BIN)
    assert ok.blessed
    assert ok.checks[0].passed is True
    assert ok.checks[0].kind == "value"
    assert ok.checks[0].observed == pytest.approx(auc)
    assert ok.reasons[0] == f"roc_auc {auc:.4g} >= 0.75 (value threshold)"

    bad = evaluate_predictions(
        Y_BIN,
        P_BIN,
        "classification",
        thresholds={"roc_auc": Threshold(min_value=0.99), "log_loss": Threshold(max_value=0.1)},
    )
    assert not bad.blessed
    assert [c.passed for c in bad.checks] == [False, False]
    assert bad.reasons[0] == f"roc_auc {auc:.4g} < min 0.99 (value threshold): not blessed"
    assert "> max 0.1" in bad.reasons[1]
    assert bad.reasons[-1] == "not blessed: 2 of 2 checks failed"


def test_no_thresholds_blesses_with_a_reason() -> None:
    result = evaluate_predictions(Y_BIN, P_BIN, "classification")
    assert result.blessed
    assert result.checks == ()
    assert result.reasons == ("blessed: no thresholds were set",)


def test_change_thresholds_are_skipped_without_baseline() -> None:
    result = evaluate_predictions(
        Y_BIN,
        P_BIN,
        "classification",
        thresholds={"roc_auc": Threshold(min_absolute_change=0.0, min_relative_change=0.0)},
    )
    assert result.blessed
    assert [c.passed for c in result.checks] == [None, None]
    assert all(c.kind == "change" for c in result.checks)
    assert "no baseline (first model)" in result.checks[0].reason
    assert result.reasons[-1] == "blessed: 0 of 2 checks passed, 2 skipped"


def test_absolute_change_higher_is_better() -> None:
    y, p = _binary_data()
    champion = evaluate_predictions(y, p, "classification")
    worse = np.clip(p + np.random.default_rng(9).normal(0, 0.3, len(p)), 0, 1)
    candidate_auc = skm.roc_auc_score(y, worse)
    delta = candidate_auc - champion.metrics["roc_auc"]
    assert delta < 0
    blocked = evaluate_predictions(
        y, worse, "classification", baseline=champion, thresholds={"roc_auc": Threshold(min_absolute_change=0.0)}
    )
    check = blocked.checks[0]
    assert not blocked.blessed
    assert check.passed is False
    assert check.observed == pytest.approx(delta)
    assert check.baseline == pytest.approx(champion.metrics["roc_auc"])
    assert check.reason == (
        f"roc_auc change {delta:+.4g} < required +0 vs baseline {champion.metrics['roc_auc']:.4g}: not blessed"
    )
    tolerant = evaluate_predictions(
        y,
        worse,
        "classification",
        baseline=champion,
        thresholds={"roc_auc": Threshold(min_absolute_change=delta - 0.01)},
    )
    assert tolerant.blessed


def test_change_thresholds_for_lower_is_better_metrics() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    champion = evaluate_predictions(y, y + 0.5, "regression")  # rmse 0.5
    better = evaluate_predictions(
        y, y + 0.25, "regression", baseline=champion, thresholds={"rmse": Threshold(min_absolute_change=0.2)}
    )
    assert better.blessed
    assert better.checks[0].observed == pytest.approx(0.25)  # improvement = baseline - candidate
    worse = evaluate_predictions(
        y,
        y + 1.0,
        "regression",
        baseline=champion,
        thresholds={"rmse": Threshold(min_absolute_change=0.0), "mae": Threshold(min_relative_change=-1.0)},
    )
    rmse_check, mae_check = worse.checks
    assert rmse_check.passed is False
    assert rmse_check.observed == pytest.approx(-0.5)  # rmse went up from 0.5 to 1.0
    assert rmse_check.reason == (
        "rmse improvement -0.5 < required +0 (lower is better: 1 vs baseline 0.5): not blessed"
    )
    assert mae_check.observed == pytest.approx(-1.0)  # (0.5 - 1.0) / 0.5
    assert mae_check.passed is True  # a tolerance of -100% lets it through
    assert not worse.blessed


def test_relative_change_is_measured_against_the_baseline_magnitude() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    champion = evaluate_predictions(y, y + 0.5, "regression")  # mae 0.5
    candidate = evaluate_predictions(
        y,
        y + 0.6,
        "regression",
        baseline=champion,
        thresholds={"mae": Threshold(min_relative_change=-0.1), "max_error": Threshold(min_relative_change=-0.25)},
    )
    mae_check, max_error_check = candidate.checks
    assert mae_check.observed == pytest.approx(-0.2)  # (0.5 - 0.6) / 0.5
    assert mae_check.passed is False
    assert "relative improvement -20.00% < required -10.00%" in mae_check.reason
    assert "lower is better" in mae_check.reason
    assert max_error_check.passed is True
    assert not candidate.blessed


def test_higher_is_better_override_and_inference() -> None:
    assert is_higher_better("roc_auc")
    assert not is_higher_better("rmse")
    assert not is_higher_better("pinball_loss")
    assert not is_higher_better("cost", override=False)
    y = np.array([1.0, 2.0, 3.0, 4.0])

    def cost(t: Any, p: Any) -> float:
        return float(np.sum(np.abs(t - p)))

    champion = evaluate_predictions(y, y + 1, "regression", custom_metrics={"cost": cost})
    cheaper = evaluate_predictions(
        y,
        y + 0.5,
        "regression",
        custom_metrics={"cost": cost},
        baseline=champion,
        thresholds={"cost": Threshold(min_absolute_change=0.0, higher_is_better=False)},
    )
    assert cheaper.blessed
    assert cheaper.checks[0].observed == pytest.approx(2.0)


def test_change_check_skipped_when_baseline_lacks_the_metric_or_slice() -> None:
    y, p = _binary_data(200)
    frame = _frame(200)
    champion = evaluate_predictions(y, p, "classification", data=frame)
    result = evaluate_predictions(
        y,
        p,
        "classification",
        data=frame,
        slices={"long": "trip_distance_km > 10"},
        baseline=champion,
        custom_metrics={"top_score": lambda t, s: float(np.max(s))},
        thresholds={
            "top_score": Threshold(min_absolute_change=0.0),
            "roc_auc": Threshold(min_absolute_change=0.0, slices=["long"]),
        },
    )
    by_scope = {(c.metric, c.slice): c for c in result.checks}
    assert by_scope[("top_score", None)].passed is None
    assert "baseline has no top_score" in by_scope[("top_score", None)].reason
    assert by_scope[("roc_auc", None)].passed is True
    assert by_scope[("roc_auc", "long")].passed is None
    assert "baseline has no slice 'long'" in by_scope[("roc_auc", "long")].reason
    assert result.blessed


def test_per_slice_thresholds() -> None:
    y, p = _binary_data(300)
    frame = _frame(300)
    # make cash predictions useless, so its slice fails while the others pass
    cash = (frame["payment_type"] == "cash").to_numpy()
    p = p.copy()
    p[cash] = 1 - p[cash]
    result = evaluate_predictions(
        y,
        p,
        "classification",
        data=frame,
        slices=["payment_type"],
        thresholds={
            "roc_auc": Threshold(min_value=0.6, slices=True),
            "accuracy": Threshold(min_value=0.0, slices=["payment_type=app"]),
        },
    )
    checks = {(c.metric, c.slice): c for c in result.checks}
    assert set(checks) == {
        ("roc_auc", None),
        ("roc_auc", "payment_type=app"),
        ("roc_auc", "payment_type=card"),
        ("roc_auc", "payment_type=cash"),
        ("accuracy", None),
        ("accuracy", "payment_type=app"),
    }
    assert checks[("roc_auc", "payment_type=cash")].passed is False
    assert checks[("roc_auc", "payment_type=card")].passed is True
    assert not result.blessed
    assert any(r.startswith("roc_auc[payment_type=cash]") and r.endswith("not blessed") for r in result.reasons)


def test_threshold_on_a_skipped_slice_is_skipped() -> None:
    y, p = _binary_data(100)
    frame = _frame(100)
    result = evaluate_predictions(
        y,
        p,
        "classification",
        data=frame,
        slices={"tiny": "trip_distance_km < 1"},
        thresholds={"roc_auc": Threshold(min_value=0.99, slices=True)},
    )
    slice_check = next(c for c in result.checks if c.slice == "tiny")
    assert slice_check.passed is None
    assert "slice skipped" in slice_check.reason


# ---------------------------------------------------------------- fairness


def test_fairness_gaps_by_hand() -> None:
    frame = pd.DataFrame({"sex": ["f", "f", "f", "f", "m", "m", "m", "m"]})
    y = [1, 0, 1, 0, 1, 0, 1, 0]
    pred = [1, 0, 0, 0, 1, 1, 1, 1]
    result = evaluate_predictions(y, pred, "classification", data=frame, sensitive_columns=["sex"], min_slice_rows=2)
    report = result.fairness["sex"]
    f, m = report.groups["f"], report.groups["m"]
    # f: 3 of 4 right, predicts positive 1/4, recall 1/2; m: 2 of 4 right, predicts positive 4/4, recall 1
    assert f.metrics["accuracy"] == pytest.approx(0.75)
    assert m.metrics["accuracy"] == pytest.approx(0.5)
    assert report.gaps["accuracy"].gap == pytest.approx(0.25)
    assert report.gaps["accuracy"].max_group == "f"
    assert report.gaps["accuracy"].min_group == "m"
    assert report.gaps["positive_rate"].gap == pytest.approx(0.75)
    assert report.gaps["recall"].gap == pytest.approx(0.5)
    assert report.gaps["recall"].max_group == "m"


def test_fairness_skips_small_groups_from_gaps() -> None:
    frame = pd.DataFrame({"group": ["a"] * 5 + ["b"] * 5 + ["c"]})
    y = [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1]
    pred = [1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    result = evaluate_predictions(y, pred, "classification", data=frame, sensitive_columns=["group"], min_slice_rows=3)
    report = result.fairness["group"]
    assert report.groups["c"].skipped is not None
    assert report.gaps["accuracy"].gap == pytest.approx(1.0 - 0.4)
    assert {report.gaps["accuracy"].max_group, report.gaps["accuracy"].min_group} == {"a", "b"}


# ---------------------------------------------------------------- custom metrics


def test_custom_metrics_run_overall_and_per_slice() -> None:
    y, p = _binary_data(100)
    frame = _frame(100)

    def mean_score(t: Any, s: Any) -> float:
        return float(np.mean(s))

    result = evaluate_predictions(
        y,
        p,
        "classification",
        data=frame,
        slices={"long": "trip_distance_km > 10"},
        custom_metrics={"mean_score": mean_score},
    )
    mask = (frame["trip_distance_km"] > 10).to_numpy()
    assert result.metrics["mean_score"] == pytest.approx(p.mean())
    assert result.slices["long"].metrics["mean_score"] == pytest.approx(p[mask].mean())


def test_custom_metric_errors_are_user_code_errors() -> None:
    def broken(t: Any, p: Any) -> float:
        raise ZeroDivisionError("oops")

    with pytest.raises(UserCodeError) as info:
        evaluate_predictions(Y_BIN, P_BIN, "classification", custom_metrics={"broken": broken})
    assert "custom metric broken" in info.value.message
    assert "ZeroDivisionError" in info.value.original_traceback
    assert 'raise ZeroDivisionError("oops")' in info.value.original_traceback

    with pytest.raises(UserCodeError, match="must return a number"):
        evaluate_predictions(Y_BIN, P_BIN, "classification", custom_metrics={"text": lambda t, p: "high"})


def test_custom_metric_returning_nan_is_omitted() -> None:
    result = evaluate_predictions(Y_BIN, P_BIN, "classification", custom_metrics={"nanny": lambda t, p: float("nan")})
    assert "nanny" not in result.metrics
    assert "not finite" in result.omitted["nanny"]


# ---------------------------------------------------------------- serialisation


def test_json_round_trip() -> None:
    y, p = _binary_data(200)
    frame = _frame(200)
    frame["sex"] = np.where(np.arange(200) % 2 == 0, "f", "m")
    champion = evaluate_predictions(y, p, "classification", data=frame, slices=["payment_type"])
    result = evaluate_predictions(
        y,
        p,
        "classification",
        data=frame,
        slices=["payment_type"],
        thresholds={"roc_auc": Threshold(min_value=0.5, min_absolute_change=0.0, slices=True)},
        baseline=champion,
        sensitive_columns=["sex"],
    )
    text = json.dumps(result.to_dict())
    again = EvaluationResult.from_dict(json.loads(text))
    assert again == result
    assert again.to_dict() == result.to_dict()


def test_from_dict_rejects_garbage() -> None:
    with pytest.raises(InvalidArgument, match="not an evaluation result"):
        EvaluationResult.from_dict({"metrics": {}})


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"problem_type": "ranking"}, "problem_type must be"),
        ({"y_pred": [0.1, 0.2]}, "pass one prediction per row"),
        ({"y_true": [], "y_pred": []}, "empty"),
        ({"y_true": [1, None, 0, 1, 0, 1, 0, 1, 0, 0]}, "missing values"),
        ({"slices": ["no_such_column"]}, "unknown slice column 'no_such_column'"),
        ({"slices": {"bad": "trip_distance_km >"}}, "slice 'bad': cannot evaluate"),
        ({"slices": {"bad": "nope > 3"}}, "slice 'bad': cannot evaluate"),
        ({"slices": {"arith": "trip_distance_km + 1"}}, "must be a condition"),
        ({"slices": {"leak": "trip_distance_km > @secret"}}, "column names only"),
        ({"slices": {"dunder": "trip_distance_km.__class__ == 1"}}, "column names only"),
        ({"slices": ["payment_type"], "data": None}, "need the evaluation frame"),
        ({"data": pd.DataFrame({"a": [1, 2]}), "slices": ["a"]}, "data has 2 rows"),
        ({"thresholds": {"rmse": Threshold(max_value=1.0)}}, "threshold on unknown metric 'rmse'"),
        ({"thresholds": {"roc_auc": 0.8}}, "must be a Threshold"),
        ({"thresholds": {"roc_auc": Threshold(min_value=0.5, slices=["nope"])}}, "unknown slices"),
        ({"custom_metrics": {"accuracy": lambda t, p: 1.0}}, "clashes with a built-in"),
        ({"custom_metrics": {"m": 3}}, "must be a callable"),
        ({"min_slice_rows": 0}, "min_slice_rows"),
        ({"sensitive_columns": ["gender"]}, "unknown slice column 'gender'"),
        ({"y_true": np.where(Y_BIN == 1, "a", "b"), "y_pred": np.full((10, 3), 1 / 3)}, "probability columns"),
        ({"y_pred": np.full((10, 2), 0.7)}, "summing to 1"),
    ],
)
def test_bad_input_is_invalid_argument(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"y_true": Y_BIN, "y_pred": P_BIN, "problem_type": "classification", "data": _frame(10)}
    args.update(kwargs)
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        evaluate_predictions(**args)


def test_baseline_of_another_problem_type_is_rejected() -> None:
    regression = evaluate_predictions([1.0, 2.0], [1.0, 2.5], "regression")
    with pytest.raises(InvalidArgument, match="compare like with like"):
        evaluate_predictions(Y_BIN, P_BIN, "classification", baseline=regression)


def test_regression_rejects_non_numeric_and_scores_for_multiclass_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match="must be numeric"):
        evaluate_predictions(["a", "b"], [1.0, 2.0], "regression")
    with pytest.raises(InvalidArgument, match="needs a binary target"):
        evaluate_predictions([0, 1, 2, 1], [0.2, 0.7, 0.9, 0.4], "classification")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "at least one of"),
        ({"min_value": 0.9, "max_value": 0.1}, "above max_value"),
        ({"min_value": float("nan")}, "finite"),
        ({"min_value": "0.5"}, "must be a number"),
        ({"min_value": 0.5, "slices": "long"}, "list of slice names"),
    ],
)
def test_bad_thresholds(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        Threshold(**kwargs)


# ---------------------------------------------------------------- explanations


def test_explain_without_shap_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "shap", None)  # makes `import shap` raise ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'mlharbor\[explain\]'"):
        explain(lambda frame: np.zeros(len(frame)), pd.DataFrame({"a": [1.0]}))


def _fake_shap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for shap's model-agnostic API: exact SHAP values of a linear model.

    Like shap's tabular maskers it calls the model with numpy arrays, so the test also proves that
    ``explain`` hands the user's function a DataFrame with the original columns.
    """

    class Explainer:
        def __init__(self, fn: Any, background: pd.DataFrame) -> None:
            self.fn, self.mean = fn, background.to_numpy(dtype=float).mean(axis=0)

        def __call__(self, rows: pd.DataFrame) -> Any:
            x = rows.to_numpy(dtype=float)
            width = x.shape[1]
            base = np.asarray(self.fn(np.zeros((1, width))), dtype=float)
            weights = np.array(
                [np.asarray(self.fn(np.eye(width)[[j]]), dtype=float)[0] - base[0] for j in range(width)]
            )
            return types.SimpleNamespace(values=(x - self.mean) * weights)

    monkeypatch.setitem(sys.modules, "shap", types.SimpleNamespace(Explainer=Explainer))


def test_explain_aggregates_mean_absolute_shap(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_shap(monkeypatch)
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0], "c": [5.0, 5.0, 5.0, 9.0]})
    seen: list[list[str]] = []

    def predict(batch: pd.DataFrame) -> np.ndarray:
        seen.append(list(batch.columns))
        return 3 * batch["a"].to_numpy() - 1 * batch["b"].to_numpy()

    importance = explain(predict, frame, max_rows=4)
    assert seen and all(cols == ["a", "b", "c"] for cols in seen)
    assert list(importance) == ["a", "b", "c"]
    assert importance["a"] == pytest.approx(3 * np.mean(np.abs(frame["a"] - 2.5)))
    assert importance["b"] == pytest.approx(0.5)
    assert importance["c"] == pytest.approx(0.0)


def test_explain_wraps_predict_errors_and_checks_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_shap(monkeypatch)

    def broken(batch: pd.DataFrame) -> Any:
        raise RuntimeError("model exploded")

    with pytest.raises(UserCodeError, match="model_predict_fn"):
        explain(broken, pd.DataFrame({"a": [1.0, 2.0]}))
    with pytest.raises(InvalidArgument, match="max_rows"):
        explain(lambda b: b["a"], pd.DataFrame({"a": [1.0]}), max_rows=0)
    with pytest.raises(InvalidArgument, match="non-empty"):
        explain(lambda b: b["a"], pd.DataFrame({"a": []}))


# ---------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=40),
    st.lists(st.floats(-5, 5, allow_nan=False), min_size=40, max_size=40),
)
def test_a_model_equal_to_its_baseline_passes_zero_change(truth: list[float], noise: list[float]) -> None:
    y = np.array(truth)
    p = y + np.array(noise[: len(y)])
    thresholds = {name: Threshold(min_absolute_change=0.0) for name in ("rmse", "mae", "r2", "mape", "max_error")}
    champion = evaluate_predictions(y, p, "regression")
    result = evaluate_predictions(y, p, "regression", thresholds=thresholds, baseline=champion)
    assert result.blessed
    assert all(c.passed in (True, None) for c in result.checks)
    assert EvaluationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=60), st.integers(0, 2**16))
def test_column_slices_partition_the_rows(groups: list[str], seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = len(groups)
    y = rng.integers(0, 2, n)
    result = evaluate_predictions(
        y, rng.integers(0, 2, n), "classification", data=pd.DataFrame({"g": groups}), slices=["g"], min_slice_rows=1
    )
    assert sum(s.rows for s in result.slices.values()) == n
    assert set(result.slices) == {f"g={v}" for v in groups}


def test_two_column_ties_are_cut_like_a_positive_score() -> None:
    matrix = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    result = evaluate_predictions(["a", "a", "b"], matrix, "classification")
    assert result.metrics["positive_rate"] == pytest.approx(2 / 3)
    assert result.metrics == pytest.approx(
        evaluate_predictions(["a", "a", "b"], matrix[:, 1], "classification").metrics
    )
