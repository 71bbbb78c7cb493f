"""A deployment job bound to a model: a new version triggers evaluation against the champion, a
transition request (compliance checks), and an approval gate that waits — then the approval promotes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import LogisticRegression

from mlharbor.core.entities import ModelStage
from mlharbor.errors import InvalidArgument
from mlharbor.registry.deployment import deployment_job
from mlharbor.workspace import Workspace

MODEL = "dev.ml.gated"


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    with Workspace.open(tmp_path) as ws:
        ws.access.create_principal("mel")
        ws.access.grant("mel", "ml_engineer")
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"a": rng.random(300), "b": rng.random(300)})
        frame["y"] = (frame["a"] > 0.5).astype(int)
        ws.tables.write("dev.eval.holdout", pa.Table.from_pandas(frame, preserve_index=False))
    yield tmp_path


def test_new_version_waits_for_approval_then_is_promoted(home: Path, wait_until: Any) -> None:
    with Workspace.open(home) as ws:
        job = deployment_job(MODEL, "dev.eval.holdout", "y", thresholds={"accuracy": {"min_value": 0.8}})
        assert ws.jobs.deploy(job)
        sched = ws.jobs.scheduler("in_process")
        assert sched.tick() == []  # the trigger's baseline
        frame = ws.tables.read("dev.eval.holdout").to_pandas()
        model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
        mv = ws.models.log_model(model, MODEL, input_example=frame[["a", "b"]].head(3), description="gated")
        fired = sched.tick()
        assert len(fired) == 1 and fired[0][0] == job.name
        run_id = ws.jobs.runs(job.name)[0].id

        def approval_state() -> str:
            return {t.task_key: t.state for t in ws.jobs.task_runs(run_id)}["approval"]

        wait_until(lambda: approval_state() == "waiting", timeout=120)  # a real waiting state
        tasks = {t.task_key: t for t in ws.jobs.task_runs(run_id)}
        assert tasks["evaluate"].values["blessed"] is True and tasks["evaluate"].values["version"] == mv.version
        assert tasks["request"].values["checks_passed"] is True
        assert ws.jobs.get_run(run_id).state == "running"
        request_id = tasks["request"].values["request_id"]
    with Workspace.open(home, principal="mel") as mel:
        mel.models.approve(request_id, "ship it")
    with Workspace.open(home) as ws:
        wait_until(lambda: ws.jobs.get_run(run_id).state != "running")
        assert ws.jobs.get_run(run_id).state == "succeeded"
        assert ws.models.get_version(MODEL, mv.version).stage is ModelStage.PRODUCTION
        gate = {t.task_key: t for t in ws.jobs.task_runs(run_id)}["approval"]
        assert gate.values["status"] == "approved" and gate.values["decided_by"] == "mel"


def test_rejection_fails_the_job_and_bad_definitions(home: Path, wait_until: Any) -> None:
    with Workspace.open(home) as ws:
        frame = ws.tables.read("dev.eval.holdout").to_pandas()
        model = LogisticRegression().fit(frame[["a", "b"]], frame["y"])
        mv = ws.models.log_model(model, MODEL, input_example=frame[["a", "b"]].head(3), description="gated")
        job = deployment_job(MODEL, "dev.eval.holdout", "y", on_new_versions=False)
        ws.jobs.deploy(job)
    import threading

    result: dict[str, object] = {}

    def go() -> None:
        with Workspace.open(home) as w:
            result["run"] = w.jobs.run(job.name, {"version": mv.version}, executor="in_process")

    thread = threading.Thread(target=go)
    thread.start()
    with Workspace.open(home) as ws:
        wait_until(lambda: bool(ws.jobs.runs(job.name)) and any(
            t.state == "waiting" for t in ws.jobs.task_runs(ws.jobs.runs(job.name)[0].id)))
        request_id = {t.task_key: t for t in ws.jobs.task_runs(ws.jobs.runs(job.name)[0].id)}["request"].values[
            "request_id"]
    with Workspace.open(home, principal="mel") as mel:
        mel.models.reject(request_id, "not now")
    thread.join(timeout=120)
    finished = result["run"]
    assert finished.state == "failed" and "approval" in finished.message  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument):
        deployment_job("not_a_model", "t", "y")
