"""Tracking benchmark: batched metric logging and model logging, against plain MLflow.

Both measurements run in one fresh temporary project (``Workspace.open(tmp)``: the embedded
default keeps MLflow's store in ``.mlharbor/mlflow.db`` and artifacts in ``.mlharbor/mlartifacts``),
and the anchor uses the SAME tracking store and experiment through MLflow's own fluent API.

1. Metric logging: 1,000 values of one metric [quick: 200] logged with
   ``with ws.tracking.start_run("bench") as run: run.log_metric("loss", v, step=i)`` (buffered,
   sent in one ``log_batch``), timed over the whole ``with`` block including the end of the run;
   vs the naive loop ``with mlflow.start_run(experiment_id=...): mlflow.log_metric("loss", v, step=i)``
   (one store round trip a value). Both paths are warmed up once; best of 3, interleaved.
   Goal: mlharbor at least 50x faster (``metrics_speedup_ratio`` = naive / mlharbor).
2. Model logging: a scikit-learn ``LogisticRegression`` on 10 float features (DESIGN.md §6 serving
   shape) with a 5-row input example: ``ws.models.log_model(model, "dev.bench.lr", input_example=...)``
   (skops payload, requirements computed in-process, SHA-256 of every file, model card, registered
   version) vs ``mlflow.sklearn.log_model(model, name="model", input_example=...)`` with defaults
   inside ``mlflow.start_run()`` (pip requirements inferred in a subprocess). Both timings include
   starting and ending the run. The first call in the process (cold; mlharbor goes first, so it
   pays the imports both share) and the median of 3 warm calls [quick: 1] are reported.
   Goal: mlharbor under 1 s warm. ``log_model_ratio`` = MLflow / mlharbor (warm; higher is better).
   The logged version is loaded back and must predict like the original model.

Run alone with ``python bench/bench_tracking.py [--quick]``.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from typing import Any

ANCHOR = "MLflow fluent API on the same tracking store: mlflow.log_metric loop; mlflow.sklearn.log_model (defaults)"
GOAL_METRICS_SPEEDUP = 50.0
GOAL_LOG_MODEL_WARM_S = 1.0
EXPERIMENT = "bench"
MODEL = "dev.bench.lr"
FEATURES = 10
FULL_METRIC_VALUES = 1_000


def _quiet_mlflow() -> None:
    """Keep the output readable: MLflow's INFO logs, progress bars and warnings off."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", message=r".*(pydantic|Pydantic|pkg_resources|setuptools).*")


def make_data(rows: int = 2_000, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, FEATURES)), columns=[f"f{i}" for i in range(FEATURES)])
    weights = rng.normal(size=FEATURES)
    y = (x.to_numpy() @ weights + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    return x, y


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --- 1. metric logging --------------------------------------------------------------------------


def _mlharbor_metrics(ws: Any, n: int) -> str:
    with ws.tracking.start_run(EXPERIMENT, run_name="mlharbor metrics") as run:
        for i in range(n):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    return str(run.run_id)


def _mlflow_metrics(mlflow: Any, experiment_id: str, n: int) -> str:
    with mlflow.start_run(experiment_id=experiment_id, run_name="mlflow naive metrics") as run:
        for i in range(n):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    return str(run.info.run_id)


def bench_metrics(ws: Any, mlflow: Any, experiment_id: str, n: int, repeats: int = 3) -> dict[str, Any]:
    """Best of ``repeats`` for each path (interleaved), after one warm-up run of each."""
    _mlharbor_metrics(ws, 10)
    _mlflow_metrics(mlflow, experiment_id, 10)
    ours, theirs = [], []
    ours_id = theirs_id = ""
    for _ in range(repeats):
        seconds, ours_id = _timed(lambda: _mlharbor_metrics(ws, n))
        ours.append(seconds)
        seconds, theirs_id = _timed(lambda: _mlflow_metrics(mlflow, experiment_id, n))
        theirs.append(seconds)
    client = mlflow.MlflowClient()
    for run_id in (ours_id, theirs_id):
        history = client.get_metric_history(run_id, "loss")
        assert len(history) == n, f"run {run_id} has {len(history)} loss values, expected {n}"
        assert sorted(m.step for m in history) == list(range(n))
    best_ours, best_theirs = min(ours), min(theirs)
    return {
        "mlharbor_metrics_s": round(best_ours, 4),
        "mlflow_naive_metrics_s": round(best_theirs, 4),
        "metrics_speedup_ratio": round(best_theirs / best_ours, 1),
        "mlharbor_metrics_all_s": [round(s, 4) for s in ours],
        "mlflow_naive_metrics_all_s": [round(s, 4) for s in theirs],
    }


# --- 2. model logging ---------------------------------------------------------------------------


def _mlharbor_log_model(ws: Any, model: Any, example: Any) -> int:
    return int(ws.models.log_model(model, MODEL, input_example=example).version)


def _mlflow_log_model(mlflow: Any, experiment_id: str, model: Any, example: Any) -> str:
    import mlflow.sklearn

    with mlflow.start_run(experiment_id=experiment_id, run_name="mlflow log_model"):
        info = mlflow.sklearn.log_model(model, name="model", input_example=example)
    return str(info.model_uri)


def bench_log_model(ws: Any, mlflow: Any, experiment_id: str, warm_repeats: int) -> dict[str, Any]:
    """Cold (first call) and warm (median) times of both, interleaved; and a load-back check."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x, y = make_data()
    model = LogisticRegression(max_iter=1_000).fit(x, y)
    example = x.head(5)
    cold_ours, version = _timed(lambda: _mlharbor_log_model(ws, model, example))
    cold_theirs, model_uri = _timed(lambda: _mlflow_log_model(mlflow, experiment_id, model, example))
    ours, theirs = [], []
    for _ in range(warm_repeats):
        seconds, version = _timed(lambda: _mlharbor_log_model(ws, model, example))
        ours.append(seconds)
        seconds, model_uri = _timed(lambda: _mlflow_log_model(mlflow, experiment_id, model, example))
        theirs.append(seconds)
    load_s, loaded = _timed(lambda: ws.models.load_model(MODEL, version))
    expected = model.predict(example)
    got = np.asarray(loaded.predict(example)).ravel()
    same = bool(np.array_equal(got, expected))
    assert same, f"{MODEL} v{version} predicts {got.tolist()}, the original {expected.tolist()}"
    warm_ours, warm_theirs = statistics.median(ours), statistics.median(theirs)
    return {
        "log_model_mlharbor_cold_s": round(cold_ours, 3),
        "log_model_mlflow_cold_s": round(cold_theirs, 3),
        "log_model_mlharbor_warm_s": round(warm_ours, 3),
        "log_model_mlflow_warm_s": round(warm_theirs, 3),
        "log_model_ratio": round(warm_theirs / warm_ours, 1),
        "log_model_cold_ratio": round(cold_theirs / cold_ours, 1),
        "log_model_mlharbor_warm_all_s": [round(s, 3) for s in ours],
        "log_model_mlflow_warm_all_s": [round(s, 3) for s in theirs],
        "load_model_s": round(load_s, 3),
        "loaded_predicts_same": same,
        "mlharbor_version": version,
        "mlflow_model_uri": model_uri,
    }


def print_table(n: int, m: dict[str, Any], lm: dict[str, Any]) -> None:
    print(f"metric logging, {n:,} values (best of {len(m['mlharbor_metrics_all_s'])}):")
    print(f"  mlharbor (buffered, one log_batch) {m['mlharbor_metrics_s'] * 1000:10.1f} ms")
    print(f"  MLflow naive log_metric loop       {m['mlflow_naive_metrics_s'] * 1000:10.1f} ms")
    met = m["metrics_speedup_ratio"] >= GOAL_METRICS_SPEEDUP
    shape = "" if n == FULL_METRIC_VALUES else f", judged at {FULL_METRIC_VALUES:,} values"
    print(f"  speed-up naive / mlharbor {m['metrics_speedup_ratio']:.1f}x  "
          f"(goal >= {GOAL_METRICS_SPEEDUP:g}x{shape}: {'met' if met else 'NOT met'})")
    print(f"model logging, LogisticRegression on {FEATURES} floats, 5-row input example:")
    print(f"  {'':<28}{'cold s':>9}{'warm s':>9}   (warm: median of {len(lm['log_model_mlharbor_warm_all_s'])})")
    for label, side in (("ws.models.log_model", "mlharbor"), ("mlflow.sklearn.log_model", "mlflow")):
        print(f"  {label:<28}{lm[f'log_model_{side}_cold_s']:>9.3f}{lm[f'log_model_{side}_warm_s']:>9.3f}")
    met = lm["log_model_mlharbor_warm_s"] < GOAL_LOG_MODEL_WARM_S
    print(f"  MLflow / mlharbor: warm {lm['log_model_ratio']:.1f}x, cold {lm['log_model_cold_ratio']:.1f}x; "
          f"goal mlharbor warm < {GOAL_LOG_MODEL_WARM_S:g} s: {'met' if met else 'NOT met'}")
    print(f"  load_model v{lm['mlharbor_version']} {lm['load_model_s']:.3f} s, "
          f"predicts like the original on 5 rows: {lm['loaded_predicts_same']}")


def run(quick: bool) -> dict[str, Any]:
    """Measure batched metric logging and model logging against plain MLflow on the same store."""
    _quiet_mlflow()
    import mlflow

    from mlharbor import Workspace

    n, warm_repeats = (200, 1) if quick else (FULL_METRIC_VALUES, 3)
    previous_uri = mlflow.get_tracking_uri()
    with (
        tempfile.TemporaryDirectory(prefix="mlh-bench-tracking-") as tmp,
        Workspace.open(tmp) as ws,
    ):
        try:
            mlflow.set_tracking_uri(ws.settings.current.tracking_uri)
            mlflow.set_registry_uri(ws.settings.current.tracking_uri)
            experiment_id = ws.tracking.adapter.experiment_id(EXPERIMENT)
            metrics = bench_metrics(ws, mlflow, experiment_id, n)
            log_model = bench_log_model(ws, mlflow, experiment_id, warm_repeats)
        finally:
            mlflow.set_tracking_uri(previous_uri)
    print_table(n, metrics, log_model)
    return {
        "anchor": ANCHOR,
        "metrics_values": n,
        **metrics,
        **log_model,
        "goals": {
            f"metrics_speedup_ge_{GOAL_METRICS_SPEEDUP:g}x": metrics["metrics_speedup_ratio"] >= GOAL_METRICS_SPEEDUP,
            f"log_model_warm_lt_{GOAL_LOG_MODEL_WARM_S:g}s": (
                log_model["log_model_mlharbor_warm_s"] < GOAL_LOG_MODEL_WARM_S),
        },
    }


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
