"""``mlharbor jobs`` end to end, locally and through ``mlharbor server`` (which then drives the runs), and
a runner killed with SIGKILL mid-task: recovered as a lost worker, then repaired without rerunning what
succeeded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlharbor.errors import PermissionDenied
from mlharbor.workspace import Workspace

pytestmark = pytest.mark.e2e

PIPELINE = '''
import time
from pathlib import Path
from mlharbor.jobs import Job, task
from mlharbor.jobs.context import set_value

HERE = Path(__file__).parent


def bump(name):
    p = HERE / name
    p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))


@task
def extract(rows: int = 3):
    bump("extract.count")
    print(f"extracted {rows} rows")
    set_value("rows", rows)


@task(retries=0)
def train(rows: int):
    bump("train.count")
    print("training", flush=True)
    while not (HERE / "go").exists():
        time.sleep(0.1)
    print("trained")
    return {"score": rows / 10}


job = Job("nightly", [extract.task(parameters={"rows": "{{job.parameters.rows}}"}),
                      train.task(depends_on=["extract"], parameters={"rows": "{{tasks.extract.values.rows}}"})],
          parameters={"rows": 7})
'''


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLHARBOR_")} | {"COLUMNS": "200"} | (extra or {})


def cli(project: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "mlharbor.cli", "-C", str(project), *args], capture_output=True,
                          text=True, timeout=300, env=_env(env), check=False)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipelines.py").write_text(PIPELINE)
    return tmp_path


def test_deploy_run_show_logs(project: Path) -> None:
    assert "deployed nightly" in cli(project, "jobs", "deploy", "pipelines:job").stderr
    assert "already deployed" in cli(project, "jobs", "deploy", "pipelines:job").stderr  # idempotent
    (project / "go").touch()
    out = json.loads(cli(project, "jobs", "run", "nightly", "--param", "rows=20", "--json").stdout)
    assert out["state"] == "succeeded" and out["parameters"] == {"rows": 20}
    assert {t["task_key"]: t["values"] for t in out["tasks"]} == {"extract": {"rows": 20}, "train": {"score": 2.0}}
    assert "extracted 20 rows" in cli(project, "jobs", "logs", out["id"], "extract").stdout
    assert cli(project, "jobs", "logs", out["id"], "extract", "--follow").stdout == "extracted 20 rows\n"  # ended
    runs = json.loads(cli(project, "jobs", "runs", "nightly", "--json").stdout)
    assert [r["id"] for r in runs] == [out["id"]]
    assert json.loads(cli(project, "jobs", "ls", "--json").stdout) == ["nightly"]
    bad = cli(project, "jobs", "run", "nightly", "--param", "nope=1", check=False)
    assert bad.returncode == 1 and "no parameters" in bad.stderr
    with Workspace.open(project) as ws:
        ws.access.create_principal("vic")
        ws.access.grant("vic", "viewer")
    with Workspace.open(project, principal="vic") as vic:
        assert vic.jobs.list() == ["nightly"]
        with pytest.raises(PermissionDenied):
            vic.jobs.run("nightly")


@pytest.mark.slow
def test_run_on_ray_by_address(project: Path, ray_cluster: str) -> None:
    """``--executor ray`` in another driver process, connecting to the session's Ray by address."""
    cli(project, "jobs", "deploy", "pipelines:job")
    (project / "go").touch()
    out = json.loads(cli(project, "jobs", "run", "nightly", "--executor", "ray", "--json",
                         env={"MLHARBOR_RAY_ADDRESS": ray_cluster, "RAY_ADDRESS": "127.0.0.1:9"}).stdout)
    assert out["state"] == "succeeded", out
    assert {t["task_key"]: t["values"] for t in out["tasks"]} == {"extract": {"rows": 7}, "train": {"score": 0.7}}
    assert "extracted 7 rows" in cli(project, "jobs", "logs", out["id"], "extract").stdout
    nowhere = cli(project, "jobs", "run", "nightly", "--executor", "ray", check=False,
                  env={"MLHARBOR_RAY_ADDRESS": "127.0.0.1:9"})
    assert nowhere.returncode == 1 and "cannot connect to Ray at 127.0.0.1:9" in nowhere.stdout + nowhere.stderr


def test_sigkill_of_the_runner_then_repair(project: Path) -> None:
    cli(project, "jobs", "deploy", "pipelines:job")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLHARBOR_")}
    runner = subprocess.Popen([sys.executable, "-m", "mlharbor.cli", "-C", str(project), "jobs", "run", "nightly"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        run_id = None
        while time.monotonic() < deadline:
            with Workspace.open(project) as ws:
                found = ws.jobs.runs("nightly")
                if found:
                    run_id = found[0].id
                    if {t.task_key: t.state for t in ws.jobs.task_runs(run_id)}.get("train") == "running":
                        break
            time.sleep(0.2)
        assert run_id is not None, "the run never reached train"
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    with Workspace.open(project) as ws:
        assert ws.jobs.get_run(run_id).state == "running"  # nobody has noticed yet
        assert ws.jobs.recover() == [run_id]
        lost = ws.jobs.get_run(run_id)
        assert lost.state == "failed" and "lost worker" in lost.message
        assert {t.task_key: t.state for t in ws.jobs.task_runs(run_id)} == {"extract": "succeeded",
                                                                            "train": "failed"}
        (project / "go").touch()  # also releases the orphaned attempt, which finishes on its own
        repaired = ws.jobs.repair(run_id)
        assert repaired.state == "succeeded" and repaired.repairs == 1
        assert (project / "extract.count").read_text() == "1"  # succeeded tasks are not rerun
        train = next(t for t in ws.jobs.task_runs(run_id) if t.task_key == "train")
        assert train.values == {"score": 0.7} and train.attempts == 2


def test_jobs_through_the_server(project: Path, server_factory: Any) -> None:
    with server_factory(project) as server:
        env = {"MLHARBOR_URL": server["url"], "MLHARBOR_TOKEN": server["token"]}
        deployed = cli(project, "jobs", "deploy", "pipelines:job", env=env).stderr
        assert f"deployed nightly to server {server['url']}" in deployed
        assert json.loads(cli(project, "jobs", "ls", "--json", env=env).stdout) == ["nightly"]
        run_id = cli(project, "jobs", "run", "nightly", "--param", "rows=5", "--no-wait", env=env).stdout.strip()
        follow = subprocess.Popen([sys.executable, "-m", "mlharbor.cli", "-C", str(project), "jobs", "logs", run_id,
                                   "train", "--follow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=_env(env))
        watchdog = threading.Timer(120, follow.kill)
        watchdog.start()
        try:
            assert follow.stdout is not None
            assert follow.stdout.readline() == "training\n"  # streamed while the task waits
            assert follow.poll() is None
            (project / "go").touch()
            out, err = follow.communicate(timeout=120)
        finally:
            watchdog.cancel()
        assert follow.returncode == 0 and out == "trained\n", err
        shown = json.loads(cli(project, "jobs", "show", run_id, "--json", env=env).stdout)
        assert {t["task_key"]: t["values"] for t in shown["tasks"]} == {"extract": {"rows": 5}, "train": {"score": 0.5}}
        assert shown["parameters"] == {"rows": 5} and shown["created_by"] == "admin"

        refused = cli(project, "jobs", "run", "nightly", "--executor", "in_process", env=env, check=False)
        assert refused.returncode == 1 and "allow_in_process_jobs" in refused.stderr  # not in the server process
        out = json.loads(cli(project, "jobs", "run", "nightly", "--param", "rows=20", "--json", env=env).stdout)
        assert out["state"] == "succeeded" and out["tasks"][1]["values"] == {"score": 2.0}
        assert cli(project, "jobs", "logs", run_id, "extract", env=env).stdout == "extracted 5 rows\n"
        assert [r["id"] for r in json.loads(cli(project, "jobs", "runs", "nightly", "--json", env=env).stdout)] == [
            out["id"], run_id]
        bad = cli(project, "jobs", "run", "nightly", "--param", "nope=1", env=env, check=False)
        assert bad.returncode == 1 and bad.stderr.startswith("error: job nightly has no parameters ['nope']")
        local = cli(project, "jobs", "run", "nightly", "--no-wait", check=False)
        assert local.returncode == 1 and "--no-wait needs a server" in local.stderr
        denied = cli(project, "jobs", "run", "nightly", env={**env, "MLHARBOR_TOKEN": "mlh_wrong"}, check=False)
        assert denied.returncode == 1 and denied.stderr.startswith("error: ")
