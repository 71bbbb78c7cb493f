"""Jobs through the server: ``Workspace.connect(url, token).jobs`` deploys definitions, and the server
(uvicorn on 127.0.0.1) drives the runs — task attempts in subprocesses or in the server process —
with the same permissions, audit and error classes as ``ws.jobs``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlharbor.api.app import create_app
from mlharbor.client import RestJobs
from mlharbor.config import load_settings
from mlharbor.errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.jobs.definitions import Dependency, replace_job
from mlharbor.workspace import Services, Workspace

pytestmark = pytest.mark.e2e

MODULE = "rest_api_job_tasks"  # unique: in-process attempts import it into this test process
TASKS = '''
import os, sys, time
from pathlib import Path
from mlharbor.jobs.context import set_value

HERE = Path(__file__).parent


def bump(name):
    p = HERE / name
    n = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(n))
    return n


def extract(rows=3):
    bump("extract.count")
    print(f"extracted {rows} rows")
    print("a warning", file=sys.stderr)
    set_value("rows", rows)


def train(rows, flag=None):
    if flag and not (HERE / flag).exists():
        raise RuntimeError(f"{flag} is missing")
    return {"score": rows / 10}


def chatter(lines, gate=None):
    Path(HERE / "chatter.pid").write_text(str(os.getpid()))
    for i in range(lines):
        print(f"line {i}", flush=True)
        time.sleep(0.02)
    while gate and not (HERE / gate).exists():
        time.sleep(0.05)
    print("done", flush=True)
'''


def py(key: str, fn: str, *deps: str, **parameters: Any) -> Task:
    return Task(key, TaskKind.PYTHON, f"{MODULE}:{fn}", parameters=parameters,
                depends_on=tuple(Dependency(d) for d in deps))


NIGHTLY = Job("nightly", [py("extract", "extract", rows="{{job.parameters.rows}}"),
                          py("train", "train", "extract", rows="{{tasks.extract.values.rows}}")],
              parameters={"rows": 7}, description="extract then train", tags={"team": "growth"})


@dataclass
class Server:
    url: str
    root: Path
    services: Services
    tokens: dict[str, str]

    def connect(self, who: str = "admin") -> Workspace:
        return Workspace.connect(self.url, token=self.tokens[who])

    def headers(self, who: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, serve_app: Any) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("jobs-api")
    (root / f"{MODULE}.py").write_text(TASKS)
    (root / "mlharbor.toml").write_text("[policy]\nallow_in_process_jobs = true\n")  # the tests use both executors
    services = Services.build(load_settings(root, environ={}))
    admin = services.auth.bootstrap_admin()
    assert admin is not None
    with serve_app(create_app(services=services)) as url:
        tokens = {"admin": admin}
        with Workspace.connect(url, token=admin) as ws:
            for name, role in (("dana", "data_scientist"), ("vic", "viewer")):
                ws.access.create_principal(name)
                ws.access.grant(name, role)
                tokens[name] = ws.access.create_token("api", principal=name)[1]
        yield Server(url, root, services, tokens)
    services.close()
    sys.modules.pop(MODULE, None)


def test_deploy_get_list_delete(server: Server) -> None:
    with server.connect("dana") as ws:
        jobs = ws.jobs
        assert isinstance(jobs, RestJobs)
        assert jobs.deploy(NIGHTLY) is True
        assert jobs.deploy(NIGHTLY) is False  # idempotent
        deployed = replace_job(NIGHTLY, run_as="dana", target="dev")  # the server's target; runs act as dana
        assert jobs.get("nightly") == deployed
        assert "nightly" in jobs.list()
        scratch = Job("scratch", [Task("only", TaskKind.CONDITION, parameters={"left": 1, "op": "==", "right": 1})])
        assert jobs.deploy(scratch)
        jobs.delete("scratch")
        with pytest.raises(NotFound, match="job scratch does not exist"):
            jobs.get("scratch")
        with pytest.raises(NotFound):
            jobs.delete("scratch")
        assert jobs.fires("nightly") == []
        with pytest.raises(InvalidArgument, match="deploy takes"):
            jobs.deploy({"name": "x"})  # type: ignore[arg-type]
    h = server.headers("dana")
    bad = {  # definitions the server refuses, each with a message saying what is wrong
        "job nightly has no tasks": {"name": "nightly", "tasks": []},
        "dependency cycle": {"name": "nightly", "tasks": [{"key": "a", "kind": "condition", "depends_on": ["b"],
                                                           "parameters": {"left": 1, "op": "==", "right": 1}},
                                                          {"key": "b", "kind": "condition", "depends_on": ["a"],
                                                           "parameters": {"left": 1, "op": "==", "right": 1}}]},
        "unknown fields ['colour']": {"name": "nightly", "tasks": [{"key": "a", "target": "m:f", "colour": "red"}]},
        "'teleport' is not a valid TaskKind": {"name": "nightly", "tasks": [{"key": "a", "kind": "teleport"}]},
        "tasks.0.max_retries": {"name": "nightly", "tasks": [{"key": "a", "target": "m:f", "max_retries": "x"}]},
        "is not a cron expression": {"name": "nightly", "tasks": [{"key": "a", "target": "m:f"}],
                                     "schedule": {"cron": "every day"}},
        "trigger": {"name": "nightly", "tasks": [{"key": "a", "target": "m:f"}], "trigger": {"kind": "moon"}},
        "not 'nightly': PUT it to /api/v1/jobs/other": {"name": "other", "tasks": [{"key": "a", "target": "m:f"}]},
        "'module:function'": {"name": "nightly", "tasks": [{"key": "a", "target": "no colon"}]},
    }
    for message, body in bad.items():
        r = httpx.put(f"{server.url}/api/v1/jobs/nightly", json=body, headers=h)
        assert r.status_code == 400 and message in r.json()["message"], (message, r.json())
    r = httpx.put(f"{server.url}/api/v1/jobs/nightly", headers={**h, "Content-Type": "application/json"},
                  content=b'{"name": "nightly", "tasks": [{"key": "a", "target": "m:f", "timeout_s": Infinity}]}')
    assert r.status_code == 400 and "finite numbers" in r.json()["message"]
    r = httpx.put(f"{server.url}/api/v1/jobs/bad name", json={"name": "bad name", "tasks": []}, headers=h)
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_ARGUMENT"
    with server.connect() as ws:
        assert ws.jobs.get("nightly") == replace_job(NIGHTLY, run_as="dana", target="dev")  # nothing bad deployed
        # a job deployed on the server machine, bigger than anything the routes limit, reads back whole
        wide = Job("wide", [Task(f"q{i}", TaskKind.SQL, "SELECT 1 -- " + "x" * 100_000) for i in range(1200)],
                   description="d" * 20_000)
        server.services.jobs(server.services.auth.authenticate(server.tokens["admin"])).deploy(wide)
        assert ws.jobs.get("wide") == replace_job(wide, run_as="admin", target="dev")
        ws.jobs.delete("wide")


@pytest.mark.parametrize("executor", ["in_process", "subprocess"])
def test_run_on_the_server(server: Server, executor: str) -> None:
    with server.connect("dana") as ws:
        ws.jobs.deploy(NIGHTLY)
        run = ws.jobs.run("nightly", {"rows": 20}, executor=executor)
        assert run.state == "succeeded" and run.parameters == {"rows": 20} and run.created_by == "dana"
        # deployed through a token: the job belongs to the server's target and runs as its deployer
        assert run.definition == {**NIGHTLY.to_dict(), "run_as": "dana", "target": "dev"}
        tasks = {t.task_key: t for t in ws.jobs.task_runs(run.id)}
        assert {k: t.values for k, t in tasks.items()} == {"extract": {"rows": 20}, "train": {"score": 2.0}}
        assert all(t.state == "succeeded" and t.attempts == 1 for t in tasks.values())
        assert all(t.io == {"read": {}, "written": {}, "mlflow_runs": []} for t in tasks.values())
        assert run.id in [r.id for r in ws.jobs.runs("nightly")]
        assert [r.id for r in ws.jobs.runs(limit=1)] == [run.id]
        assert all(r.definition == {} for r in ws.jobs.runs())  # listed runs leave it out
        if executor == "subprocess":
            assert ws.jobs.logs(run.id, "extract") == "extracted 20 rows\n"
            assert ws.jobs.logs(run.id, "extract", "stderr") == "a warning\n"
            piece = ws.jobs.read_log(run.id, "extract", offset=10, limit=3)
            assert (piece.text, piece.next_offset, piece.size, piece.complete) == ("20 ", 13, 18, True)
        else:
            assert ws.jobs.logs(run.id, "extract") == ""  # in-process attempts keep no log files
        queued = ws.jobs.run("nightly", executor=executor, wait=False)
        assert queued.state == "queued" and queued.parameters == {"rows": 7}
        assert ws.jobs.wait(queued.id).state == "succeeded"
        with pytest.raises(InvalidArgument, match=r"no parameters \['nope'\]; it has \['rows'\]"):
            ws.jobs.run("nightly", {"nope": 1}, executor=executor)
        with pytest.raises(InvalidArgument, match="unknown executor 'gpu'"):
            ws.jobs.run("nightly", executor="gpu")
        with pytest.raises(NotFound, match="job nowhere does not exist"):
            ws.jobs.run("nowhere")
        with pytest.raises(NotFound, match="has no task nope"):
            ws.jobs.logs(run.id, "nope")
        with pytest.raises(NotFound):
            ws.jobs.get_run("0" * 32)


def test_a_job_object_is_deployed_then_run(server: Server) -> None:
    job = Job("adhoc", [py("extract", "extract", rows=2)])
    with server.connect("dana") as ws:
        run = ws.jobs.run(job, executor="in_process")
        assert run.state == "succeeded" and run.job_name == "adhoc"
        assert ws.jobs.get("adhoc") == replace_job(job, run_as="dana", target="dev")


def test_cancel_a_running_run_and_follow_its_log(server: Server, wait_until: Any) -> None:
    gate = "cancel.gate"
    job = Job("long", [Task("chatter", TaskKind.PYTHON, f"{MODULE}:chatter", parameters={"lines": 30, "gate": gate})])
    pid_file = server.root / "chatter.pid"
    pid_file.unlink(missing_ok=True)
    with server.connect("dana") as ws:
        ws.jobs.deploy(job)
        run = ws.jobs.run("long", wait=False)
        wait_until(lambda: ws.jobs.read_log(run.id, "chatter").text.endswith("line 29\n"))
        assert ws.jobs.get_run(run.id).state == "running"
        with server.connect("vic") as viewer, pytest.raises(PermissionDenied, match="vic lacks 'write' in dev"):
            viewer.jobs.cancel(run.id)
        asked = ws.jobs.cancel(run.id)
        assert asked.cancel_requested and asked.state == "running"
        done = ws.jobs.wait(run.id)
        assert done.state == "cancelled" and done.message == "cancelled by request"
        assert ws.jobs.task_runs(run.id)[0].state == "cancelled"
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)  # the attempt's process was killed
        with pytest.raises(Conflict, match="already finished"):
            ws.jobs.cancel(run.id)
        # following: every line while the task runs, and the end once it finishes
        followed = ws.jobs.run("long", wait=False)
        pieces = ws.jobs.follow_log(followed.id, "chatter", poll_s=0.05)
        text = ""
        for piece in pieces:
            text += piece.text
            if text.endswith("line 29\n"):
                assert not piece.complete
                (server.root / gate).touch()
        assert text == "".join(f"line {i}\n" for i in range(30)) + "done\n"
        assert ws.jobs.wait(followed.id).state == "succeeded"


def test_repair_a_failed_run(server: Server) -> None:
    flag = "repair.flag"
    job = Job("gated", [py("extract", "extract", rows=4),
                        py("train", "train", "extract", rows="{{tasks.extract.values.rows}}", flag=flag)])
    counter = server.root / "extract.count"
    with server.connect("dana") as ws:
        ws.jobs.deploy(job)
        failed = ws.jobs.run("gated")
        assert failed.state == "failed" and failed.message == "failed tasks: train"
        assert f"{flag} is missing" in {t.task_key: t for t in ws.jobs.task_runs(failed.id)}["train"].error
        extracted = int(counter.read_text())
        with server.connect("vic") as viewer, pytest.raises(PermissionDenied):
            viewer.jobs.repair(failed.id)
        (server.root / flag).touch()
        restarted = ws.jobs.repair(failed.id, wait=False)
        assert restarted.id == failed.id and restarted.state == "running" and restarted.repairs == 1
        repaired = ws.jobs.wait(failed.id)
        assert repaired.state == "succeeded" and repaired.message == ""
        assert int(counter.read_text()) == extracted  # extract kept its result
        assert {t.task_key: t.values for t in ws.jobs.task_runs(failed.id)}["train"] == {"score": 0.4}
        with pytest.raises(Conflict, match="nothing to repair"):
            ws.jobs.repair(failed.id)
        r = httpx.post(f"{server.url}/api/v1/job-runs/{failed.id}/repair", json={"executor": "gpu"},
                       headers=server.headers("dana"))
        assert r.status_code == 400 and "unknown executor" in r.json()["message"]


def test_permissions_and_authentication(server: Server) -> None:
    with server.connect() as ws:
        ws.jobs.deploy(NIGHTLY)
    with server.connect("vic") as viewer:
        assert "nightly" in viewer.jobs.list()
        assert viewer.jobs.get("nightly") == replace_job(NIGHTLY, run_as="admin", target="dev")
        assert isinstance(viewer.jobs.runs(), list)
        with pytest.raises(PermissionDenied, match="vic lacks 'write' in dev"):
            viewer.jobs.deploy(NIGHTLY)
        with pytest.raises(PermissionDenied):
            viewer.jobs.run("nightly")
        with pytest.raises(PermissionDenied):
            viewer.jobs.delete("nightly")
    with server.connect() as ws:
        denied = ws.access.audit_log(principal="vic", decision="denied")
        assert {e.action for e in denied} >= {"job.deploy", "job.run", "job.delete"}
    for method, path in (("GET", "/api/v1/jobs"), ("PUT", "/api/v1/jobs/nightly"),
                         ("POST", "/api/v1/jobs/nightly/runs"), ("GET", "/api/v1/job-runs"),
                         ("GET", "/api/v1/job-runs/x/tasks/extract/logs")):
        r = httpx.request(method, server.url + path, json={})
        assert r.status_code == 401 and r.json()["error_code"] == "UNAUTHENTICATED", (method, path)
    with Workspace.connect(server.url, token="mlh_nope") as stranger, pytest.raises(Unauthenticated):
        stranger.jobs.list()


def test_http_edges(server: Server) -> None:
    h = server.headers()
    with server.connect() as ws:
        ws.jobs.deploy(NIGHTLY)
        run = ws.jobs.run("nightly", executor="in_process")
    r = httpx.post(f"{server.url}/api/v1/jobs/nightly/runs", headers=h)  # no body: the defaults
    assert r.status_code == 202 and r.json()["state"] == "queued" and r.json()["definition"] is None
    detail = httpx.get(f"{server.url}/api/v1/job-runs/{run.id}", headers=h).json()
    assert detail["definition"]["name"] == "nightly"
    assert [t["task_key"] for t in detail["tasks"]] == ["extract", "train"]
    for path, status in (
        (f"/api/v1/job-runs/{run.id}/tasks/extract/logs?offset=-1", 400),
        (f"/api/v1/job-runs/{run.id}/tasks/extract/logs?stream=stdin", 400),
        (f"/api/v1/job-runs/{run.id}/tasks/extract/logs?limit=0", 400),
        (f"/api/v1/job-runs/{run.id}/tasks/nope/logs", 404),
        ("/api/v1/job-runs/no.such.run", 400),
        ("/api/v1/job-runs/nosuchrun", 404),
        ("/api/v1/job-runs?limit=0", 400),
        ("/api/v1/jobs/nope", 404),
    ):
        r = httpx.get(server.url + path, headers=h)
        assert r.status_code == status and r.json()["message"], (path, r.status_code, r.json())
    r = httpx.post(f"{server.url}/api/v1/jobs/nightly/runs", headers={**h, "Content-Type": "application/json"},
                   content=b'{"parameters": {"rows": NaN}}')
    assert r.status_code == 400 and "finite numbers" in r.json()["message"]
    r = httpx.post(f"{server.url}/api/v1/jobs/nightly/runs", json={"colour": "red"}, headers=h)
    assert r.status_code == 400 and "colour" in r.json()["message"]


def test_what_only_the_server_machine_does(server: Server) -> None:
    with server.connect() as ws:
        with pytest.raises(InvalidArgument, match="run `mlharbor scheduler` on the server machine"):
            ws.jobs.scheduler()
        with pytest.raises(InvalidArgument, match="run `mlharbor jobs recover` on the server machine"):
            ws.jobs.recover()


def test_in_process_runs_through_the_api_need_the_policy(tmp_path: Path, serve_app: Any) -> None:
    services = Services.build(load_settings(tmp_path, environ={}))
    token = services.auth.bootstrap_admin()
    try:
        with serve_app(create_app(services=services)) as url:
            h = {"Authorization": f"Bearer {token}"}
            job = Job("noop", [Task("c", TaskKind.CONDITION, parameters={"left": 1, "op": "==", "right": 1})])
            assert httpx.put(f"{url}/api/v1/jobs/noop", json=job.to_dict(), headers=h).status_code == 200
            r = httpx.post(f"{url}/api/v1/jobs/noop/runs", json={"executor": "in_process"}, headers=h)
            assert r.status_code == 400 and "allow_in_process_jobs" in r.json()["message"]
            assert httpx.get(f"{url}/api/v1/job-runs", headers=h).json() == []  # nothing was recorded
            r = httpx.post(f"{url}/api/v1/jobs/noop/runs", json={"executor": "subprocess"}, headers=h)
            assert r.status_code == 202
    finally:
        services.close()
