"""ws.tracking: runs with batched logging, environment tags, training-set inputs and lineage."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.core.entities import LineageNode
from mlharbor.errors import InvalidArgument, PermissionDenied
from mlharbor.features import FeatureLookup
from mlharbor.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(tmp_path) as w:
        yield w


def test_run_logs_in_batches_and_records_environment(ws: Workspace) -> None:
    calls = []
    adapter = ws.services.tracking_engine()
    original = adapter.log_batch

    def counting(run_id, metrics=(), params=None, tags=None):  # type: ignore[no-untyped-def]
        calls.append(len(metrics))
        original(run_id, metrics, params, tags)

    adapter.log_batch = counting  # type: ignore[method-assign]
    with ws.tracking.start_run("dev-exp", run_name="first", tags={"team": "fraud"}) as run:
        run.log_params({"alpha": 0.5, "depth": 3})
        for i in range(2500):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_metrics({"auc": 0.9, "f1": 0.8})
    assert calls == [1000, 1000, 502]  # three round trips for 2,502 values
    got = ws.tracking.get_run(run.run_id)
    assert got.status == "FINISHED" and got.name == "first" and got.experiment == "dev-exp"
    assert got.params == {"alpha": "0.5", "depth": "3"}
    assert got.metrics["auc"] == 0.9 and got.metrics["loss"] == pytest.approx(1 / 2500)
    history = ws.tracking.metric_history(run.run_id, "loss")
    assert len(history) == 2500 and [p.step for p in history[:3]] == [0, 1, 2]
    assert got.tags["team"] == "fraud" and got.tags["mlharbor.principal"] == ws.actor.principal  # type: ignore[union-attr]
    assert "mlharbor.python" in got.tags and "mlflow" in got.tags["mlharbor.packages"]
    assert [r.run_id for r in ws.tracking.search_runs("dev-exp", "metrics.auc > 0.5")] == [run.run_id]
    assert "dev-exp" in ws.tracking.experiments()


def test_failed_block_marks_run_failed(ws: Workspace) -> None:
    with pytest.raises(RuntimeError), ws.tracking.start_run("dev-exp") as run:
        run.log_metric("x", 1.0)
        raise RuntimeError("boom")
    got = ws.tracking.get_run(run.run_id)
    assert got.status == "FAILED" and got.metrics == {"x": 1.0}  # buffered values still arrive


def test_bad_keys_are_refused(ws: Workspace) -> None:
    with ws.tracking.start_run("dev-exp") as run:
        with pytest.raises(InvalidArgument):
            run.log_metric("", 1.0)
        with pytest.raises(InvalidArgument):
            run.log_text("x", "../escape.txt")
    with pytest.raises(InvalidArgument):
        ws.tracking.start_run("  ")


def test_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "train.py").write_text("print(1)\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    with Workspace.open(tmp_path) as ws:
        with ws.tracking.start_run("e") as clean:
            pass
        (tmp_path / "train.py").write_text("print(2)\n")
        with ws.tracking.start_run("e") as dirty:
            pass
        a, b = ws.tracking.get_run(clean.run_id).tags, ws.tracking.get_run(dirty.run_id).tags
    assert a["mlflow.source.git.commit"] == commit and a["mlharbor.git.dirty"] == "false"
    assert b["mlharbor.git.dirty"] == "true"


def test_training_set_inputs_and_lineage(ws: Workspace) -> None:
    ws.features.create_table("dev.features.drivers", pa.table({
        "driver_id": pa.array([1, 2], pa.int64()),
        "ts": pa.array([datetime(2026, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
        "rating": [4.0, 3.0]}), primary_keys="driver_id", timestamp_keys="ts")
    labels = pa.table({"driver_id": pa.array([1, 2], pa.int64()),
                       "at": pa.array([datetime(2026, 1, 2, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
                       "y": [1, 0]})
    ts = ws.features.create_training_set(labels, [FeatureLookup("dev.features.drivers", "driver_id",
                                                                timestamp_lookup_key="at")], label="y")
    with ws.tracking.start_run("dev-exp") as run:
        run.log_training_set(ts)
    got = ws.tracking.get_run(run.run_id)
    by_name = {i["name"]: i for i in got.inputs}
    drivers = by_name["dev.features.drivers"]
    assert drivers["digest"] == "v1" and drivers["context"] == "training"
    assert "lookups" in by_name["feature_spec"]["source"]
    edges = ws.services.lineage.upstream(LineageNode("run", run.run_id))
    assert {str(e.source) for e in edges} == {"table:dev.features.drivers@1"}


def test_viewer_cannot_start_runs(tmp_path: Path) -> None:
    with Workspace.open(tmp_path) as ws:
        ws.access.create_principal("vic")
        ws.access.grant("vic", "viewer")
    with Workspace.open(tmp_path, principal="vic") as vic, pytest.raises(PermissionDenied):
        vic.tracking.start_run("e")


def test_autolog_records_sklearn_fits_inside_runs(ws: Workspace) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    assert ws.tracking.autolog(("sklearn",)) == ["sklearn"]
    with pytest.raises(InvalidArgument):
        ws.tracking.autolog(("keras",))
    x = np.random.default_rng(0).random((50, 3))
    with ws.tracking.start_run("auto") as run:
        LogisticRegression(C=0.25).fit(x, (x[:, 0] > 0.5).astype(int))
        run.log_metric("mine", 1.0)
    got = ws.tracking.get_run(run.run_id)
    assert got.status == "FINISHED" and got.params["C"] == "0.25"
    assert "training_score" in got.metrics and got.metrics["mine"] == 1.0
    import mlflow

    assert mlflow.active_run() is None  # nothing left attached
    mlflow.sklearn.autolog(disable=True)


@pytest.mark.parametrize("flavor", ["xgboost", "lightgbm"])
def test_autolog_boosting_libraries(ws: Workspace, flavor: str) -> None:
    import mlflow
    import numpy as np

    assert ws.tracking.autolog((flavor,)) == [flavor]
    rng = np.random.default_rng(0)
    x, y = rng.random((80, 3)), (rng.random(80) > 0.5).astype(int)
    with ws.tracking.start_run("auto") as run:
        if flavor == "xgboost":
            import xgboost

            xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(x, y)
        else:
            import lightgbm

            lightgbm.LGBMClassifier(n_estimators=4, verbose=-1).fit(x, y)
    got = ws.tracking.get_run(run.run_id)
    assert got.status == "FINISHED" and got.params, got
    getattr(mlflow, flavor).autolog(disable=True)
