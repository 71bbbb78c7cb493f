"""The job runner on every executor (in-process, subprocess, and Ray on a local Ray started by the
session): values, run_if, conditions, retries, timeouts, repair, logs, task kinds, notebooks."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlharbor.config import load_settings
from mlharbor.errors import Conflict, InvalidArgument
from mlharbor.jobs import Dependency, Job, JobRunState, RunIf, Task, TaskKind, TaskState
from mlharbor.jobs.definitions import evaluate_condition
from mlharbor.jobs.executors import Executor, InProcessExecutor, SubprocessExecutor
from mlharbor.jobs.runner import JobRunner
from mlharbor.meta import MetadataStore

TASKS = '''
import os, sys, time
from pathlib import Path
from mlharbor.jobs.context import set_value

def count(path):
    p = Path(path)
    n = int(p.read_text()) + 1 if p.exists() else 1
    p.write_text(str(n))
    return n

def extract(marker, rows=3):
    count(marker)
    set_value("rows", rows)
    return {"table": "dev.raw.trips"}

def train(rows, table, alpha=0.5):
    return {"score": rows * alpha, "table_seen": table}

def fail(message="boom"):
    raise RuntimeError(message)

def flaky(counter, fail_times):
    if count(counter) <= fail_times:
        raise RuntimeError("not yet")
    return {"ok": True}

def sleepy(seconds, pid_file=None):
    if pid_file:
        Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)

def gated(flag, marker):
    count(marker)
    if not Path(flag).exists():
        raise RuntimeError("flag missing")
    return {"gated": True}

def square(x):
    if x == "bad":
        raise ValueError("bad input")
    return {"y": x * x}

def chatter(word):
    print("to stdout:", word)
    print("to stderr:", word, file=sys.stderr)
    sys.stdout.flush()
    os.system(f"echo from a child process: {word}")  # file descriptors, not just sys.stdout
    return {"said": word}

def shout(megabytes):
    chunk = "x" * 1023 + "\\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(chunk)
    return {"printed": megabytes}
'''


def py(key: str, fn: str, *deps: str | Dependency, **kw: object) -> Task:
    return Task(key, TaskKind.PYTHON, f"jtasks:{fn}",
                depends_on=tuple(d if isinstance(d, Dependency) else Dependency(d) for d in deps), **kw)  # type: ignore[arg-type]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "jtasks.py").write_text(TASKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("jtasks", None)
    return tmp_path


@pytest.fixture
def store(project: Path) -> Iterator[MetadataStore]:
    s = MetadataStore(load_settings(project).current.metadata_url)
    s.upgrade()
    yield s
    s.dispose()


def executor(name: str) -> Executor:
    from mlharbor.task_runtime import run_invocation

    if name == "in_process":
        return InProcessExecutor(run_invocation)
    if name == "ray":
        from mlharbor.jobs.executors.ray import RayExecutor

        return RayExecutor(run_invocation)
    return SubprocessExecutor(warm=name == "subprocess")  # subprocess_new: a new interpreter per attempt


@pytest.fixture(params=["in_process", "subprocess", "subprocess_new", pytest.param("ray", marks=pytest.mark.slow)])
def runner(request: pytest.FixtureRequest, store: MetadataStore, project: Path) -> JobRunner:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")  # the session's local Ray, which RayExecutor finds connected
    return JobRunner(store, executor(request.param), project / "logs", poll_interval=0.01, work_dir=project)


def states(runner: JobRunner, run_id: str) -> dict[str, str]:
    return {t.task_key: t.state for t in runner.task_runs(run_id)}


def test_values_flow_between_tasks(runner: JobRunner, project: Path) -> None:
    job = Job("etl", [
        py("extract", "extract", parameters={"marker": str(project / "m"), "rows": "{{job.parameters.rows}}"}),
        py("train", "train", "extract", parameters={"rows": "{{tasks.extract.values.rows}}",
                                                     "table": "{{tasks.extract.values.table}}"}),
    ], parameters={"rows": 4})
    run = runner.run(job, {"rows": 6})
    assert run.state == JobRunState.SUCCEEDED and run.parameters == {"rows": 6}
    tasks = {t.task_key: t for t in runner.task_runs(run.id)}
    assert tasks["extract"].values == {"rows": 6, "table": "dev.raw.trips"}
    assert tasks["train"].values == {"score": 3.0, "table_seen": "dev.raw.trips"}
    assert all(t.attempts == 1 and t.started_at and t.ended_at for t in tasks.values())
    with pytest.raises(InvalidArgument, match="no parameters"):
        runner.run(job, {"nope": 1})


def test_run_if_after_a_failure(runner: JobRunner) -> None:
    job = Job("rules", [
        py("a", "fail"),
        py("ok", "train", parameters={"rows": 1, "table": "t"}),
        py("b", "train", "a", parameters={"rows": 1, "table": "t"}),
        py("always", "train", "a", "ok", parameters={"rows": 2, "table": "t"}, run_if=RunIf.ALL_DONE),
        py("on_failure", "train", "a", parameters={"rows": 3, "table": "t"}, run_if=RunIf.AT_LEAST_ONE_FAILED),
        py("any_ok", "train", "a", "ok", parameters={"rows": 4, "table": "t"}, run_if=RunIf.AT_LEAST_ONE_SUCCESS),
        py("none_failed", "train", "ok", parameters={"rows": 5, "table": "t"}, run_if=RunIf.NONE_FAILED),
    ])
    run = runner.run(job)
    assert states(runner, run.id) == {"a": "failed", "ok": "succeeded", "b": "upstream_failed",
                                      "always": "succeeded", "on_failure": "succeeded", "any_ok": "succeeded",
                                      "none_failed": "succeeded"}
    assert run.state == JobRunState.FAILED and "a" in run.message
    failed = next(t for t in runner.task_runs(run.id) if t.task_key == "a")
    assert "RuntimeError: boom" in failed.error


def test_conditions_pick_a_branch(runner: JobRunner) -> None:
    job = Job("branches", [
        py("score", "train", parameters={"rows": 10, "table": "t", "alpha": 0.09}),
        Task("good", TaskKind.CONDITION, parameters={"left": "{{tasks.score.values.score}}", "op": ">=",
                                                     "right": 0.8}, depends_on=(Dependency("score"),)),
        py("promote", "train", Dependency("good", "true"), parameters={"rows": 1, "table": "t"}),
        py("alert", "train", Dependency("good", "false"), parameters={"rows": 1, "table": "t"}),
    ])
    run = runner.run(job)
    got = states(runner, run.id)
    assert got["good"] == "succeeded" and got["promote"] == "succeeded" and got["alert"] == "excluded"
    assert run.state == JobRunState.SUCCEEDED  # an excluded leaf is fine
    assert evaluate_condition("3", "<", 10) and evaluate_condition("a", "!=", "b")
    with pytest.raises(InvalidArgument):
        evaluate_condition("a", ">", "b")


def test_retries_with_backoff(runner: JobRunner, project: Path) -> None:
    job = Job("retry", [py("flaky", "flaky", parameters={"counter": str(project / "c"), "fail_times": 2},
                           max_retries=2, min_retry_interval_s=0.05, retry_backoff=2.0)])
    started = time.monotonic()
    run = runner.run(job)
    task = runner.task_runs(run.id)[0]
    assert run.state == JobRunState.SUCCEEDED and task.attempts == 3 and task.values == {"ok": True}
    assert time.monotonic() - started >= 0.15  # waited 0.05 then 0.1 s
    again = runner.run(Job("retry2", [py("flaky", "flaky", parameters={"counter": str(project / "d"),
                                                                       "fail_times": 5}, max_retries=1)]))
    assert again.state == JobRunState.FAILED and runner.task_runs(again.id)[0].attempts == 2


def test_timeouts(runner: JobRunner, project: Path) -> None:
    pid_file = project / "pid"
    run = runner.run(Job("slow", [py("hang", "sleepy", parameters={"seconds": 60, "pid_file": str(pid_file)},
                                     timeout_s=1.0)]))
    task = runner.task_runs(run.id)[0]
    assert task.state == TaskState.TIMED_OUT and run.state == JobRunState.FAILED
    if isinstance(runner._executor, SubprocessExecutor):
        pid = int(pid_file.read_text())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed at its timeout
    elif not isinstance(runner._executor, InProcessExecutor) and pid_file.exists():
        assert gone(int(pid_file.read_text()))  # the Ray worker that ran it is killed (asynchronously)
    whole = runner.run(Job("slow_job", [py("hang", "sleepy", parameters={"seconds": 60})], timeout_s=1.0))
    assert whole.state == JobRunState.TIMED_OUT
    assert runner.task_runs(whole.id)[0].state in (TaskState.TIMED_OUT, TaskState.CANCELLED)


def test_repair_reruns_failed_tasks_and_dependents_only(runner: JobRunner, project: Path) -> None:
    flag, marker_a, marker_b = project / "flag", project / "a", project / "b"
    job = Job("repairable", [
        py("a", "extract", parameters={"marker": str(marker_a)}),
        py("b", "gated", "a", parameters={"flag": str(flag), "marker": str(marker_b)}),
        py("c", "train", "b", parameters={"rows": "{{tasks.a.values.rows}}", "table": "t"}),
    ])
    run = runner.run(job)
    assert run.state == JobRunState.FAILED and states(runner, run.id)["c"] == "upstream_failed"
    with pytest.raises(Conflict, match="nothing to repair"):
        runner.repair(runner.run(Job("fine", [py("x", "train", parameters={"rows": 1, "table": "t"})])).id)
    flag.touch()
    repaired = runner.repair(run.id)
    assert repaired.id == run.id and repaired.state == JobRunState.SUCCEEDED and repaired.repairs == 1
    assert marker_a.read_text() == "1" and marker_b.read_text() == "2"  # a kept, b rerun
    tasks = {t.task_key: t for t in runner.task_runs(run.id)}
    assert tasks["c"].values == {"score": 1.5, "table_seen": "t"} and tasks["b"].attempts == 2


def test_subprocess_logs_and_a_flood_of_output(store: MetadataStore, project: Path) -> None:
    runner = JobRunner(store, SubprocessExecutor(), project / "logs", poll_interval=0.01)
    run = runner.run(Job("loud", [py("shout", "shout", parameters={"megabytes": 20})]))
    task = runner.task_runs(run.id)[0]
    assert run.state == JobRunState.SUCCEEDED and task.values == {"printed": 20}
    stdout = Path(task.log_paths[0])
    assert stdout.stat().st_size >= 20 * 1024 * 1024 and stdout.name == "shout-attempt1.stdout.log"


def test_script_sql_run_job_and_for_each(runner: JobRunner, store: MetadataStore, project: Path) -> None:
    import pyarrow as pa

    from mlharbor.workspace import Workspace

    with Workspace.open(project) as ws:
        ws.tables.write("dev.raw.items", pa.table({"id": [1, 2, 3]}))
    (project / "scripts").mkdir()
    (project / "scripts" / "report.py").write_text(
        "import argparse\nfrom mlharbor.jobs.context import set_value\n"
        "p = argparse.ArgumentParser(); p.add_argument('--rows', type=int); a = p.parse_args()\n"
        "print('report', a.rows); set_value('doubled', a.rows * 2)\n")
    child = Job("child", [py("sq", "square", parameters={"x": "{{job.parameters.x}}"})], parameters={"x": 2})
    with store.transaction() as tx:
        tx.jobs.save_job(child.name, child.to_dict(), "t")
    job = Job("kinds", [
        Task("count", TaskKind.SQL, "SELECT count(*) AS n FROM dev.raw.items"),
        Task("report", TaskKind.SCRIPT, "scripts/report.py", parameters={"rows": "{{tasks.count.values.rows}}"},
             depends_on=(Dependency("count"),)),
        Task("sub", TaskKind.RUN_JOB, "child", parameters={"x": 5}),
        Task("each", TaskKind.FOR_EACH, parameters={"inputs": [1, 2, 3, 4]}, concurrency=2,
             nested=py("sq", "square", parameters={"x": "{{input}}"})),
    ])
    run = runner.run(job)
    tasks = {t.task_key: t for t in runner.task_runs(run.id)}
    assert run.state == JobRunState.SUCCEEDED, {k: t.error for k, t in tasks.items()}
    assert tasks["count"].values == {"rows": 1, "first_row": {"n": 3}}
    assert tasks["report"].values == {"doubled": 2}
    assert tasks["sub"].values["state"] == "succeeded"
    child_run = tasks["sub"].values["run_id"]
    assert {t.task_key: t.values for t in runner.task_runs(child_run)} == {"sq": {"y": 25}}
    assert tasks["each"].values == {"iterations": 4, "values": [{"y": 1}, {"y": 4}, {"y": 9}, {"y": 16}]}
    bad = runner.run(Job("bad_each", [Task("each", TaskKind.FOR_EACH, parameters={"inputs": [1, "bad"]},
                                           nested=py("sq", "square", parameters={"x": "{{input}}"}))]))
    failed = runner.task_runs(bad.id)[0]
    assert bad.state == JobRunState.FAILED and "1 of 2 iterations failed" in failed.error and "bad" in failed.error
    escape = runner.run(Job("escape", [Task("s", TaskKind.SCRIPT, "../outside.py")]))
    assert escape.state == JobRunState.FAILED and ".." in runner.task_runs(escape.id)[0].error


def test_runs_announce_start_and_end_in_the_outbox(runner: JobRunner, store: MetadataStore) -> None:
    ok = runner.run(Job("announce", [py("t", "train", parameters={"rows": 1, "table": "t"})]))
    bad = runner.run(Job("announce_bad", [py("t", "fail")]))
    with store.transaction() as tx:
        events = [(e.kind, e.payload["run_id"]) for e in tx.outbox.after(0, limit=100)]
    assert events == [("job_run.started", ok.id), ("job_run.succeeded", ok.id),
                      ("job_run.started", bad.id), ("job_run.failed", bad.id)]


IO_TASKS = '''
from mlharbor.task_runtime import open_workspace


def copy_and_track():
    with open_workspace() as ws:
        rows = ws.tables.read("dev.raw.src")
        ws.tables.write("dev.out.copy", rows)
        with ws.tracking.start_run("io-exp") as run:
            run.log_metric("rows", rows.num_rows)
    return {"run": run.run_id}
'''


def test_tasks_record_tables_and_mlflow_runs_as_lineage(runner: JobRunner, store: MetadataStore,
                                                        project: Path) -> None:
    import pyarrow as pa

    from mlharbor.core.entities import LineageNode
    from mlharbor.workspace import Workspace

    (project / "io_tasks.py").write_text(IO_TASKS)
    sys.modules.pop("io_tasks", None)
    with Workspace.open(project) as ws:
        ws.tables.write("dev.raw.src", pa.table({"id": [1, 2]}))
        src = ws.tables.write("dev.raw.src", pa.table({"id": [3]})).version
    job = Job("io", [Task("copy", TaskKind.PYTHON, "io_tasks:copy_and_track"),
                     Task("count", TaskKind.SQL, "SELECT count(*) AS n FROM dev.out.copy",
                          depends_on=(Dependency("copy"),))])
    run = runner.run(job)
    tasks = {t.task_key: t for t in runner.task_runs(run.id)}
    assert run.state == JobRunState.SUCCEEDED, {k: t.error for k, t in tasks.items()}
    mlflow_run = tasks["copy"].values["run"]
    with Workspace.open(project) as ws:
        copy = ws.tables.history("dev.out.copy", 1)[0].version
    assert tasks["copy"].io == {"read": {"dev.raw.src": src}, "written": {"dev.out.copy": copy},
                                "mlflow_runs": [mlflow_run]}
    assert tasks["count"].io == {"read": {"dev.out.copy": copy}, "written": {}, "mlflow_runs": []}
    node = LineageNode("job_task", "io.copy", run.id)
    with store.transaction() as tx:
        into = {(str(e.source), e.relation) for e in tx.lineage.upstream(node, 1)}
        out = {(str(e.target), e.relation) for e in tx.lineage.downstream(node, 1)}
        copied = LineageNode("table", "dev.out.copy", str(copy))
        read_by_count = {str(e.target) for e in tx.lineage.downstream(copied, 1)}
    assert into == {(f"table:dev.raw.src@{src}", "read_by_task")}
    assert out == {(f"table:dev.out.copy@{copy}", "written_by_task"), (f"run:{mlflow_run}", "created_by_task")}
    assert f"job_task:io.count@{run.id}" in read_by_count


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["in_process", "subprocess", "subprocess_new"])
def test_the_loop_wakes_on_finishes_and_deadlines_not_by_polling(name: str, store: MetadataStore,
                                                                  project: Path) -> None:
    # with an hour between polls, this run ends only if finished attempts, the retry delay and the
    # task timeout wake the loop themselves
    runner = JobRunner(store, executor(name), project / "logs", poll_interval=3600, work_dir=project)
    job = Job("awake", [
        py("a", "train", parameters={"rows": 1, "table": "t"}),
        py("b", "flaky", "a", parameters={"counter": str(project / "c"), "fail_times": 1},
           max_retries=1, min_retry_interval_s=0.2),
        py("c", "sleepy", "b", parameters={"seconds": 30}, timeout_s=0.5),
        py("d", "train", "c", parameters={"rows": 2, "table": "t"}, run_if=RunIf.ALL_DONE),
    ])
    run = runner.run(job)
    assert states(runner, run.id) == {"a": "succeeded", "b": "succeeded", "c": "timed_out", "d": "succeeded"}
    assert run.state == JobRunState.SUCCEEDED  # its leaf, d, ran after all


# --- notebook tasks --------------------------------------------------------------------------------


def write_notebook(path: Path, *cells: str, parameters: str | None = None) -> None:
    """A notebook of code cells; ``parameters`` becomes a cell tagged ``parameters`` after the first."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A report"), *(nbformat.v4.new_code_cell(c) for c in cells)]
    if parameters is not None:
        nb.cells.insert(1, nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


def read_output(task_log_paths: list[str]) -> tuple[Path, object]:
    import nbformat

    [path] = [Path(p) for p in task_log_paths if p.endswith(".output.ipynb")]
    return path, nbformat.read(str(path), as_version=4)


def stream_text(nb: object) -> str:
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"  # type: ignore[attr-defined]
                   for o in c.outputs if o.output_type == "stream")


def gone(pid: int, within_s: float = 10.0) -> bool:
    """Whether process ``pid`` has exited (a zombie counts as gone), waiting up to ``within_s``."""
    import psutil

    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_notebook_task_parameters_values_and_output(runner: JobRunner, project: Path) -> None:
    write_notebook(project / "notebooks" / "report.ipynb",
                   "import os\nfrom mlharbor.jobs.context import set_value\n"
                   "print(f'rows={rows} label={label} cwd={os.getcwd()}')\nset_value('doubled', rows * 2)",
                   "{'tripled': rows * 3}",
                   parameters="rows = 1\nlabel = 'default'")
    job = Job("nb", [
        py("extract", "extract", parameters={"marker": str(project / "m"), "rows": 4}),
        Task("report", TaskKind.NOTEBOOK, "notebooks/report.ipynb", depends_on=(Dependency("extract"),),
             parameters={"rows": "{{tasks.extract.values.rows}}"}),
        py("train", "train", "report", parameters={"rows": "{{tasks.report.values.doubled}}", "table": "t"}),
    ])
    run = runner.run(job)
    tasks = {t.task_key: t for t in runner.task_runs(run.id)}
    assert run.state == JobRunState.SUCCEEDED, {k: t.error for k, t in tasks.items()}
    assert tasks["report"].values == {"doubled": 8}
    assert tasks["train"].values == {"score": 4.0, "table_seen": "t"}  # a downstream task read the value
    path, nb = read_output(tasks["report"].log_paths)
    assert path.name == "report-attempt1.output.ipynb" and path.parent == project / "logs" / run.id
    injected = nb.cells[2]  # type: ignore[attr-defined]
    assert injected.metadata.tags == ["injected-parameters"] and "rows = 4" in injected.source
    assert "label" not in injected.source  # defaults stay where the parameters cell set them
    assert f"rows=4 label=default cwd={project}" in stream_text(nb)
    results = [o for o in nb.cells[-1].outputs if o.output_type == "execute_result"]  # type: ignore[attr-defined]
    assert results[0]["data"]["text/plain"] == "{'tripled': 12}"


def test_notebook_task_failure_keeps_the_output(runner: JobRunner, project: Path) -> None:
    write_notebook(project / "bad.ipynb", "print('before the error')", "raise ValueError(f'bad rows: {rows}')",
                   "print('never reached')", parameters="rows = 0")
    run = runner.run(Job("nb_bad", [Task("nb", TaskKind.NOTEBOOK, "bad.ipynb", parameters={"rows": 7})]))
    task = runner.task_runs(run.id)[0]
    assert run.state == JobRunState.FAILED and task.state == TaskState.FAILED
    assert "ValueError: bad rows: 7" in task.error and "cell 5" in task.error  # markdown, params, injected, print
    assert "raise ValueError" in task.error and "\x1b[" not in task.error  # the traceback, without colours
    _, nb = read_output(task.log_paths)
    text = stream_text(nb)
    assert "before the error" in text and "never reached" not in text
    assert any(o.output_type == "error" and o.ename == "ValueError"
               for o in nb.cells[4].outputs)  # type: ignore[attr-defined]


def test_notebook_task_timeout_leaves_no_kernel(runner: JobRunner, project: Path) -> None:
    kernel_pid, child_pid = project / "kernel.pid", project / "child.pid"
    write_notebook(project / "hang.ipynb",
                   "import os, subprocess, sys, time\n"
                   "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                   f"open({str(child_pid)!r}, 'w').write(str(child.pid))\n"
                   f"open({str(kernel_pid)!r}, 'w').write(str(os.getpid()))\n"
                   "time.sleep(120)")
    run = runner.run(Job("nb_hang", [Task("nb", TaskKind.NOTEBOOK, "hang.ipynb", timeout_s=5.0)]))
    task = runner.task_runs(run.id)[0]
    assert task.state == TaskState.TIMED_OUT, task.error
    assert kernel_pid.exists() and child_pid.exists(), "the hanging cell never ran: kernel start took too long"
    kernel, child = int(kernel_pid.read_text()), int(child_pid.read_text())
    assert kernel != os.getpid()
    assert gone(kernel) and gone(child)  # the kernel and what its cells started went with the attempt


def test_notebook_task_paths_are_confined(runner: JobRunner, project: Path) -> None:
    (project.parent / "outside.ipynb").write_text("{}")
    run = runner.run(Job("nb_escape", [Task("a", TaskKind.NOTEBOOK, "../outside.ipynb"),
                                      Task("b", TaskKind.NOTEBOOK, "missing.ipynb")]))
    errors = {t.task_key: t.error for t in runner.task_runs(run.id)}
    assert run.state == JobRunState.FAILED
    assert ".." in errors["a"] and "missing.ipynb does not exist" in errors["b"]
    with pytest.raises(InvalidArgument, match=r"\.ipynb"):
        Job("nb_not", [Task("a", TaskKind.NOTEBOOK, "report.py")])


# --- the Ray executor beyond the conformance suite -------------------------------------------------


@pytest.mark.slow
def test_ray_attempt_output_comes_back_through_ws_jobs(project: Path, ray_cluster: str) -> None:
    import pyarrow as pa

    from mlharbor.workspace import Workspace

    with Workspace.open(project) as ws:
        ws.tables.write("dev.raw.items", pa.table({"id": [1, 2, 3]}))
        run = ws.jobs.run(Job("on_ray", [
            Task("count", TaskKind.SQL, "SELECT count(*) AS n FROM dev.raw.items"),
            py("talk", "chatter", "count", parameters={"word": "{{tasks.count.values.rows}}"}),
        ]), executor="ray")
        tasks = {t.task_key: t for t in ws.jobs.task_runs(run.id)}
        assert run.state == JobRunState.SUCCEEDED, {k: t.error for k, t in tasks.items()}
        assert tasks["count"].values == {"rows": 1, "first_row": {"n": 3}}  # SQL opened the workspace on Ray
        assert tasks["talk"].values == {"said": 1}
        assert [Path(p).name for p in tasks["talk"].log_paths] == ["talk-attempt1.stdout.log",
                                                                   "talk-attempt1.stderr.log"]
        stdout = ws.jobs.logs(run.id, "talk")
        assert "to stdout: 1" in stdout and "from a child process: 1" in stdout
        assert "to stderr: 1" in ws.jobs.logs(run.id, "talk", "stderr")


def test_ray_executor_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlharbor.errors import MissingDependency
    from mlharbor.jobs.service import executor_named

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"pip install 'mlharbor\[ray\]'"):
        executor_named("ray")
    with pytest.raises(InvalidArgument, match="in_process, ray"):
        executor_named("dask")


def test_ray_output_shipped_back_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlharbor.jobs.executors import ray as ray_executor

    monkeypatch.setattr(ray_executor, "MAX_CAPTURED_BYTES", 10)
    (tmp_path / "out").write_text("0123456789abcdef")
    assert ray_executor._captured(str(tmp_path / "out")) == "[mlharbor: the first 6 bytes were dropped]\n6789abcdef"
    (tmp_path / "short").write_text("ok")
    assert ray_executor._captured(str(tmp_path / "short")) == "ok"
