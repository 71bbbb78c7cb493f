"""ws.evaluate: a registered version against its champion, stored on the version and logged to MLflow."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mlharbor.errors import InvalidArgument
from mlharbor.evaluation import Threshold
from mlharbor.features import FeatureLookup
from mlharbor.registry import events
from mlharbor.workspace import Workspace

MODEL = "dev.ml.scored"


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    (tmp_path / "mlharbor.toml").write_text("[policy]\nallow_self_approval = true\n")
    with Workspace.open(tmp_path) as w:
        yield w


def data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.random(n), "b": rng.random(n), "group": rng.choice(["x", "y"], n)})
    x["y"] = ((x["a"] + 0.3 * rng.standard_normal(n)) > 0.5).astype(int)
    return x


def promote(ws: Workspace, version: int) -> None:
    ws.models.approve(ws.models.request_transition(MODEL, version, "Production").id)


def test_challenger_against_champion(ws: Workspace) -> None:
    frame = data()
    good = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
    weak = LogisticRegression().fit(frame[["a", "b"]].assign(a=0.0), frame["y"])  # ignores the signal
    v1 = ws.models.log_model(good, MODEL, input_example=frame[["a", "b"]].head(3), description="good",
                             method="predict_proba").version
    first = ws.evaluate(MODEL, frame, "y", "classification", version=v1, slices=["group"],
                        thresholds={"roc_auc": Threshold(min_value=0.7, min_absolute_change=0.0, slices=True)})
    assert first.blessed and first.metrics["roc_auc"] > 0.7
    assert any("baseline" in r.lower() for r in first.reasons)  # change threshold skipped: no champion yet
    assert {"group=x", "group=y"} <= set(first.slices)
    promote(ws, v1)
    v2 = ws.models.log_model(weak, MODEL, input_example=frame[["a", "b"]].head(3), description="weak",
                             method="predict_proba").version
    second = ws.evaluate(f"models:/{MODEL}/{v2}", frame, "y", "classification", sensitive_columns=["group"],
                         thresholds={"roc_auc": Threshold(min_absolute_change=0.0)})
    assert not second.blessed and second.metrics["roc_auc"] < first.metrics["roc_auc"]
    assert "group" in second.fairness
    stored = ws.models.get_version(MODEL, v2).evaluation
    assert stored is not None and stored["blessed"] is False and stored["baseline_version"] == v1
    run = ws.tracking.get_run(stored["run_id"])
    assert run.tags["mlharbor.model_version"] == str(v2) and run.metrics["roc_auc"] == pytest.approx(
        second.metrics["roc_auc"])
    ws.models.update_model(MODEL, checks={"evaluation_blessed": {}})
    assert not ws.models.run_checks(MODEL, v2)["passed"]
    assert ws.models.run_checks(MODEL, v1)["passed"]
    with ws.services.store.transaction() as tx:
        assert len(tx.outbox.after(0, limit=1000, kinds=[events.EVALUATION_COMPLETED])) == 2


def test_features_are_looked_up_with_the_models_spec(ws: Workspace) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rng = np.random.default_rng(1)
    ids = np.arange(200)
    ws.features.create_table("dev.features.ent", pa.table({
        "id": pa.array(ids, pa.int64()), "ts": pa.array([t0] * 200, pa.timestamp("us", tz="UTC")),
        "score": rng.random(200)}), primary_keys="id", timestamp_keys="ts")
    scores = ws.tables.read("dev.features.ent").to_pandas().set_index("id")["score"]
    labels = pd.DataFrame({"id": ids, "at": [t0 + timedelta(days=1)] * 200,
                           "y": (scores.loc[ids].to_numpy() > 0.5).astype(int)})
    training = ws.features.create_training_set(pa.Table.from_pandas(labels), [
        FeatureLookup("dev.features.ent", "id", timestamp_lookup_key="at")], label="y", exclude_columns=["id", "at"])
    frame = training.load_df().to_pandas()
    model = LogisticRegression().fit(frame[["score"]], frame["y"])
    v = ws.models.log_model(model, MODEL, training_set=training, description="spec").version
    assert ws.features.get_table("dev.features.ent").models == [f"{MODEL} v{v}"]  # which models use it
    result = ws.evaluate(MODEL, labels, "y", "classification", version=v)  # no feature column in the data
    assert result.rows == 200 and result.metrics["accuracy"] > 0.8


def test_bad_evaluation_input(ws: Workspace) -> None:
    frame = data(50)
    ws.models.log_model(LogisticRegression().fit(frame[["a", "b"]], frame["y"]), MODEL, description="d")
    with pytest.raises(InvalidArgument, match="label"):
        ws.evaluate(MODEL, frame, "nope", "classification")
    with pytest.raises(InvalidArgument, match="model inputs"):
        ws.evaluate(MODEL, frame.drop(columns=["b"]), "y", "classification")
    with pytest.raises(InvalidArgument):
        ws.evaluate(MODEL, 42, "y", "classification")
