"""A plain ``mlflow`` client against ``mlharbor server`` on PostgreSQL: MLflow's REST API behind
mlharbor's tokens and permissions, the registry workflow guarded, traversal shapes refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlharbor.workspace import Workspace

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CLIENT = r'''
import json, os, sys, tempfile
import mlflow
from mlflow import MlflowClient

out = {}
client = MlflowClient()
experiment = client.create_experiment("team-exp")
with mlflow.start_run(experiment_id=experiment) as run:
    mlflow.log_param("alpha", 0.5)
    mlflow.log_metric("rmse", 1.25, step=0)
    mlflow.log_metrics({"rmse": 1.0}, step=1)
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "notes.txt"), "w") as fh:
        fh.write("hello from a plain client")
    mlflow.log_artifact(os.path.join(folder, "notes.txt"), artifact_path="docs")
run_id = run.info.run_id
got = client.get_run(run_id)
out["params"] = dict(got.data.params)
out["metric_steps"] = [m.step for m in client.get_metric_history(run_id, "rmse")]
out["artifact"] = open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="docs/notes.txt")).read()
out["listed"] = [f.path for f in client.list_artifacts(run_id, "docs")]
client.create_registered_model("dev.ml.teammodel")
version = client.create_model_version("dev.ml.teammodel", f"runs:/{run_id}/docs", run_id).version
client.set_registered_model_alias("dev.ml.teammodel", "candidate", version)
out["alias"] = client.get_model_version_by_alias("dev.ml.teammodel", "candidate").version
out["searched"] = [r.info.run_id for r in client.search_runs([experiment])]
out["run_id"] = run_id
errors = {}
for key, call in {
    "champion": lambda: client.set_registered_model_alias("dev.ml.teammodel", "champion", version),
    "stage": lambda: client.transition_model_version_stage("dev.ml.teammodel", version, "Production"),
    "bad_name": lambda: client.create_registered_model("no_catalog_model"),
}.items():
    try:
        call()
        errors[key] = None
    except Exception as exc:
        errors[key] = str(exc)[:300]
out["errors"] = errors
print(json.dumps(out))
'''

VIEWER = r'''
import json
from mlflow import MlflowClient
client = MlflowClient()
result = {}
try:
    client.create_experiment("viewer-exp")
    result["create"] = "allowed"
except Exception as exc:
    result["create"] = str(exc)[:300]
try:
    result["read"] = [e.name for e in client.search_experiments()]
except Exception as exc:
    result["read"] = str(exc)[:300]
print(json.dumps(result))
'''


def run_client(code: str, url: str, token: str | None) -> Any:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "MLFLOW_TRACKING_URI": url}
    if token is not None:
        env["MLFLOW_TRACKING_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def team_project(tmp_path: Path, fresh_postgres_database: str) -> Path:
    (tmp_path / "mlharbor.toml").write_text(
        "[targets.dev]\n"
        f'metadata_url = "{fresh_postgres_database}"\n'
        f'tracking_uri = "{fresh_postgres_database}"\n'
        f'artifact_root = "{tmp_path / "artifacts"}"\n')
    return tmp_path


def test_plain_mlflow_client_through_the_server(team_project: Path, server_factory: Any) -> None:
    with server_factory(team_project, timeout=300) as server:
        url, admin = server["url"], server["token"]
        out = run_client(CLIENT, url, admin)
        assert out["params"] == {"alpha": "0.5"} and out["metric_steps"] == [0, 1]
        assert out["artifact"] == "hello from a plain client" and out["listed"] == ["docs/notes.txt"]
        assert out["alias"] == "1" and out["searched"] == [out["run_id"]]
        assert "PERMISSION_DENIED" in out["errors"]["champion"] and "approvals" in out["errors"]["champion"]
        assert "PERMISSION_DENIED" in out["errors"]["stage"]
        assert "INVALID_ARGUMENT" in out["errors"]["bad_name"]
        assert (team_project / "artifacts").exists()  # proxied: the client never touched the store

        with Workspace.connect(url, token=admin) as ws:
            ws.access.create_principal("vera")
            ws.access.grant("vera", "viewer")
            _, viewer = ws.access.create_token("ci", principal="vera")
            audit = [e.action for e in ws.access.audit_log(limit=500)]
        assert "mlflow.POST" in audit
        seen = run_client(VIEWER, url, viewer)
        assert "PERMISSION_DENIED" in seen["create"] and "team-exp" in seen["read"]
        anonymous = run_client(VIEWER, url, None)
        assert "UNAUTHENTICATED" in anonymous["create"] and "UNAUTHENTICATED" in anonymous["read"]

        headers = {"Authorization": f"Bearer {admin}"}
        run_id = out["run_id"]
        for path in ("/api/2.0/mlflow-artifacts/artifacts/..%2F..%2Fetc%2Fpasswd",
                     "/api/2.0/mlflow-artifacts/artifacts/%252e%252e/%252e%252e/etc/passwd",
                     "/api/2.0/mlflow-artifacts/artifacts/docs/..\\..\\secret",
                     f"/get-artifact?run_uuid={run_id}&path=../../../etc/passwd",
                     f"/get-artifact?run_uuid={run_id}&path=/etc/passwd",
                     f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=%2e%2e/%2e%2e",
                     "/model-versions/get-artifact?name=dev.ml.teammodel&version=1&path=..%5c..%5cx"):
            response = httpx.get(url + path, headers=headers)
            assert response.status_code == 400, (path, response.status_code, response.text[:200])
        for source in ("file:///etc", "/etc/passwd", "runs:/x/../../../etc", "mlflow-artifacts:/a/%2e%2e/%2e%2e",
                       "s3://bucket/key#/../../x"):
            response = httpx.post(f"{url}/api/2.0/mlflow/model-versions/create", headers=headers,
                                  json={"name": "dev.ml.teammodel", "source": source, "run_id": run_id})
            assert response.status_code == 400, (source, response.text[:200])
