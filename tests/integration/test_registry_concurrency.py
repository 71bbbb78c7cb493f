"""Concurrent transition requests and approvals on one model, from parallel processes on PostgreSQL,
never produce two Production versions (nor two pending requests for one version and stage)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlharbor.config import load_settings
from mlharbor.core.entities import ModelStage
from mlharbor.workspace import Services, Workspace

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MODEL = "dev.ml.raced"

WORKER = r'''
import json, os, sys, time
from mlharbor.errors import MlharborError
from mlharbor.workspace import Workspace
project, go, action, arg = sys.argv[1:5]
ws = Workspace.open(project, principal="admin")
ws.models.versions("dev.ml.raced")  # connect before the start line
while not os.path.exists(go):
    time.sleep(0.005)
try:
    if action == "approve":
        done = ws.models.approve(arg, "race")
        print(json.dumps({"ok": True, "version": done.version}))
    else:
        req = ws.models.request_transition("dev.ml.raced", int(arg), "Production", "race")
        print(json.dumps({"ok": True, "request": req.id}))
except MlharborError as exc:
    print(json.dumps({"ok": False, "error": type(exc).__name__, "message": exc.message}))
ws.close()
'''


def race(project: Path, go: Path, jobs: list[tuple[str, str]]) -> list[dict[str, object]]:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(project), str(go), action, arg],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for action, arg in jobs]
    import time

    time.sleep(8)  # let every worker open its workspace
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    go.unlink()
    return results


def test_parallel_approvals_leave_one_production_version(tmp_path: Path, fresh_postgres_database: str) -> None:
    (tmp_path / "mlharbor.toml").write_text(
        "[policy]\nallow_self_approval = true\n[targets.dev]\n"
        f'metadata_url = "{fresh_postgres_database}"\ntracking_uri = "{fresh_postgres_database}"\n'
        f'artifact_root = "{tmp_path / "artifacts"}"\n')
    services = Services.build(load_settings(tmp_path))
    assert services.auth.bootstrap_admin() is not None
    services.close()
    x = pd.DataFrame(np.random.default_rng(0).random((40, 2)), columns=["a", "b"])
    with Workspace.open(tmp_path, principal="admin") as ws:
        versions = [ws.models.log_model(LogisticRegression(C=c).fit(x, (x["a"] > 0.5).astype(int)), MODEL,
                                        input_example=x.head(2), description=f"C={c}").version
                    for c in (0.1, 1.0, 10.0, 100.0)]
    go = tmp_path / "go"
    requested = race(tmp_path, go, [("request", str(versions[0]))] * 3
                     + [("request", str(v)) for v in versions[1:]])
    assert sum(1 for r in requested[:3] if r["ok"]) == 1  # one pending request per version and stage
    assert {r["error"] for r in requested[:3] if not r["ok"]} == {"AlreadyExists"}
    with Workspace.open(tmp_path, principal="admin") as ws:
        pending = ws.models.requests(MODEL)
    assert sorted(r.version for r in pending) == versions
    approved = race(tmp_path, go, [("approve", r.id) for r in pending])
    assert all(r["ok"] for r in approved), approved
    with Workspace.open(tmp_path, principal="admin") as ws:
        stages = [v.stage for v in ws.models.versions(MODEL)]
        assert stages.count(ModelStage.PRODUCTION) == 1 and stages.count(ModelStage.ARCHIVED) == 3
        champion = next(v.version for v in ws.models.versions(MODEL) if v.stage is ModelStage.PRODUCTION)
        history = ws.models.history(MODEL)
        assert sum(1 for c in history if c.to_stage is ModelStage.PRODUCTION) == 4
        assert sum(1 for c in history if c.to_stage is ModelStage.ARCHIVED) == 3
        assert ws.services.tracking_engine().aliases(MODEL)["champion"] == champion
