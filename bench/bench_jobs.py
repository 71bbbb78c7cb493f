"""Jobs engine overhead: 100 no-op Python tasks through ``JobRunner`` against the same functions in a
plain loop, bare ``python -c pass`` starts, and Prefect / Dagster running the same DAG locally.

Two DAG shapes over the same 100 no-op functions (``noops.noop_0`` … ``noop_99``, written to a
temporary project) [quick: 20]:

* ``chain``: ``noop_0 -> noop_1 -> … -> noop_99``;
* ``wide``: ``noop_0 -> (noop_1 … noop_98, in parallel) -> noop_99``.

Measured in the same run, interleaved, best of 3 [quick: 1] after one warm-up run each:

1. **plain loop** (the anchor): the 100 functions called in dependency order;
2. **in-process**: ``JobRunner`` with the in-process executor on a SQLite metadata store as
   ``ws.jobs`` opens it (``load_settings(project).current.metadata_url``), default
   ``max_parallel`` (4); every transition is written to the store, as in production;
3. **subprocess**: the same with the subprocess executor (the default of ``ws.jobs``): attempts
   forked from its warm zygote; and **subprocess_new**, with ``warm=False``: a new
   ``python -m mlharbor.task_runtime`` per attempt (what other platforms get);
4. **python -c**: 100 bare ``python -c pass`` starts of the same interpreter, one at a time, and 4 at
   a time (the subprocess goal's yardstick; the wide shape runs 4 attempts at a time);
5. **peers**: Prefect 3 (``ThreadPoolTaskRunner`` with 4 workers, its ephemeral local server) and
   Dagster (``execute_in_process``: ephemeral instance, in-process executor) running the same DAG
   over the same functions, in a bench-only venv (``bench/.venv-jobs-peers``, created on first use
   and kept; gitignored), driven by a subprocess. Their first run (server start, imports) is
   reported apart as ``cold_s``. A peer that cannot be installed or fails is reported with its error.

Figures per shape: ``*_s`` wall seconds per DAG run; ``inprocess_overhead_ms_per_task`` =
(in-process - plain loop) / tasks (goal <= 5 ms); ``subprocess_ms_per_task`` = subprocess / tasks
and ``subprocess_over_python_c_ratio`` = that ÷ one ``python -c`` start (goal <= 2, judged against
one start at a time for the chain and 4 at a time for the wide shape, like against like);
``<peer>_over_inprocess_ratio`` and ``<peer>_over_subprocess_ratio`` = peer ÷ mlharbor (goal: both
> 1, i.e. mlharbor below the peer).

Run alone with ``python bench/bench_jobs.py [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ANCHOR = "the same 100 no-op functions called in a plain Python loop; bare `python -c pass` starts; Prefect, Dagster"
PEER_SPECS = ["prefect==3.9.1", "dagster==1.13.28"]
PEERS_VENV = Path(__file__).resolve().parent / ".venv-jobs-peers"
SHAPES = ("chain", "wide")
IN_PROCESS_GOAL_MS = 5.0
SUBPROCESS_GOAL_RATIO = 2.0


def write_noops(root: Path, n: int) -> None:
    """The project module ``noops`` with ``noop_0`` … ``noop_{n-1}``, each doing nothing."""
    body = "".join(f"def noop_{i}():\n    return None\n\n\n" for i in range(n))
    (root / "noops.py").write_text(f'"""{n} no-op tasks."""\n\n\n{body}')


def dependencies(shape: str, n: int) -> list[list[int]]:
    """For each task index, the indexes it depends on."""
    if shape == "chain":
        return [[] if i == 0 else [i - 1] for i in range(n)]
    if shape == "wide":
        return [[] if i == 0 else [0] if i < n - 1 else list(range(1, n - 1)) for i in range(n)]
    raise ValueError(shape)


def make_job(shape: str, n: int) -> Any:
    from mlharbor.jobs import Dependency, Job, Task, TaskKind

    deps = dependencies(shape, n)
    return Job(f"bench_{shape}", [Task(f"t{i}", TaskKind.PYTHON, f"noops:noop_{i}",
                                       depends_on=tuple(Dependency(f"t{d}") for d in deps[i]))
                                  for i in range(n)])


def plain_loop(n: int) -> Callable[[], None]:
    """Call the project's functions in dependency order (both shapes: index order)."""
    import noops  # the project directory is on sys.path

    functions = [getattr(noops, f"noop_{i}") for i in range(n)]

    def loop() -> None:
        for fn in functions:
            fn()

    return loop


def python_c(n: int, parallel: int) -> float:
    """Wall seconds of ``n`` bare ``python -c pass`` starts, ``parallel`` at a time."""
    def start(_: int) -> None:
        subprocess.run([sys.executable, "-c", "pass"], check=True, stdin=subprocess.DEVNULL)

    began = time.perf_counter()
    if parallel == 1:
        for i in range(n):
            start(i)
    else:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(start, range(n)))
    return time.perf_counter() - began


def measure_mlharbor(project: Path, n: int, repeat: int) -> dict[str, dict[str, float]]:
    """Best wall seconds per engine and shape, interleaved so a busy spell hits every engine alike."""
    from mlharbor.config import load_settings
    from mlharbor.jobs import JobRunState
    from mlharbor.jobs.executors import InProcessExecutor, SubprocessExecutor
    from mlharbor.jobs.runner import JobRunner
    from mlharbor.meta import MetadataStore

    store = MetadataStore(load_settings(project).current.metadata_url)
    store.upgrade()
    runners = {"inprocess": JobRunner(store, InProcessExecutor(), project / "logs", work_dir=project),
               "subprocess": JobRunner(store, SubprocessExecutor(), project / "logs", work_dir=project),
               "subprocess_new": JobRunner(store, SubprocessExecutor(warm=False), project / "logs",
                                           work_dir=project)}
    jobs = {shape: make_job(shape, n) for shape in SHAPES}
    loop = plain_loop(n)

    def engine(name: str, shape: str) -> Callable[[], None]:
        def go() -> None:
            run = runners[name].run(jobs[shape])
            if run.state != JobRunState.SUCCEEDED:
                raise RuntimeError(f"{name} {shape} run {run.id} {run.state}: {run.message}")
        return go

    timed: dict[str, Callable[[], Any]] = {"python_c": lambda: python_c(n, 1),
                                           "python_c_parallel4": lambda: python_c(n, 4)}
    for shape in SHAPES:
        timed[f"{shape}.loop"] = loop
        timed[f"{shape}.inprocess"] = engine("inprocess", shape)
        timed[f"{shape}.subprocess"] = engine("subprocess", shape)
        timed[f"{shape}.subprocess_new"] = engine("subprocess_new", shape)
    best: dict[str, float] = {}
    try:
        for fn in timed.values():  # warm-up: imports, first connection, page cache
            fn()
        for _ in range(repeat):
            for name, fn in timed.items():
                began = time.perf_counter()
                fn()
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - began)
    finally:
        store.dispose()
    out: dict[str, dict[str, float]] = {shape: {} for shape in SHAPES}
    for name, seconds in best.items():
        where, _, engine_name = name.partition(".")
        if engine_name:
            out[where][engine_name] = seconds
        else:  # python -c: the same yardstick for every shape
            for shape in SHAPES:
                out[shape][name] = seconds
    return out


# -- peers: Prefect and Dagster in their own venv ----------------------------------------------

PEER_SCRIPT = r'''
import importlib, json, os, sys, time

project, peer, n, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, project)
noops = importlib.import_module("noops")
functions = [getattr(noops, f"noop_{i}") for i in range(n)]
wide_mids = range(1, n - 1)


def prefect_runs():
    import prefect
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    tasks = [task(fn, name=f"noop_{i}") for i, fn in enumerate(functions)]

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=False)
    def chain():
        future = tasks[0].submit()
        for t in tasks[1:]:
            future = t.submit(wait_for=[future])
        future.result()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=False)
    def wide():
        first = tasks[0].submit()
        mids = [tasks[i].submit(wait_for=[first]) for i in wide_mids]
        tasks[-1].submit(wait_for=mids).result()

    def go(shape):
        state = (chain if shape == "chain" else wide)(return_state=True)
        if not state.is_completed():
            raise RuntimeError(f"prefect {shape}: {state}")

    return prefect.__version__, go


def dagster_runs():
    import dagster
    from dagster import In, Nothing, Out, job, op

    def make(i, fn):
        return op(name=f"noop_{i}", ins={"after": In(Nothing)}, out=Out(Nothing))(fn)

    ops = [make(i, fn) for i, fn in enumerate(functions)]

    @job
    def chain():
        done = ops[0]()
        for o in ops[1:]:
            done = o(after=done)

    @job
    def wide():
        first = ops[0]()
        ops[-1](after=[ops[i](after=first) for i in wide_mids])

    def go(shape):
        result = (chain if shape == "chain" else wide).execute_in_process()
        if not result.success:
            raise RuntimeError(f"dagster {shape} failed")

    return dagster.__version__, go


began = time.perf_counter()
version, go = prefect_runs() if peer == "prefect" else dagster_runs()
figures = {"version": version, "import_s": time.perf_counter() - began}
for shape in ("chain", "wide"):
    began = time.perf_counter()
    go(shape)
    cold = time.perf_counter() - began
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        go(shape)
        times.append(time.perf_counter() - began)
    figures[shape] = {"cold_s": cold, "best_s": min(times), "all_s": times}
print(json.dumps(figures))
'''


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd)


def peers_python() -> Path:
    """The bench-only venv's Python with the peers installed (created on first use; RuntimeError if
    impossible). A peer missing from it is reported by :func:`run_peer`."""
    python = PEERS_VENV / "bin" / "python"
    if python.exists() and _run([str(python), "-c", "import prefect, dagster"], 300).returncode == 0:
        return python
    steps = [[sys.executable, "-m", "venv", str(PEERS_VENV)],
             [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"]]
    steps += [[str(python), "-m", "pip", "install", "-q", spec] for spec in PEER_SPECS]
    for step in steps:
        print(f"   peers venv: {' '.join(step[-2:])}", flush=True)
        done = _run(step, 1800)
        if done.returncode != 0 and step[-1] not in PEER_SPECS:
            raise RuntimeError(f"{' '.join(step)} failed: {done.stderr.strip()[-2000:]}")
    return python


def run_peer(peer: str, project: Path, n: int, repeat: int) -> dict[str, Any]:
    """One peer's figures from a subprocess of the peers' venv, or ``{"error": ...}``."""
    try:
        python = peers_python()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    home = project / f".{peer}-home"
    home.mkdir(exist_ok=True)
    # local only: Prefect's ephemeral server on 127.0.0.1, no analytics; Dagster's ephemeral instance
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
           "PREFECT_API_URL": "", "DO_NOT_TRACK": "1"}
    env.pop("DAGSTER_HOME", None)
    env.pop("PYTHONPATH", None)
    script = project / "peer_dag.py"
    script.write_text(PEER_SCRIPT)
    try:
        done = _run([str(python), str(script), str(project), peer, str(n), str(repeat)], 1800, env=env, cwd=home)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr.strip()[-3000:]}"}
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# -- figures -------------------------------------------------------------------------------------

def shape_figures(shape: str, n: int, times: dict[str, float], peers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    loop, inproc, subproc, sub_new = times["loop"], times["inprocess"], times["subprocess"], times["subprocess_new"]
    python_c_s, python_c4_s = times["python_c"], times["python_c_parallel4"]
    overhead_ms = (inproc - loop) / n * 1000
    sub_ms, python_c_ms, python_c4_ms = subproc / n * 1000, python_c_s / n * 1000, python_c4_s / n * 1000
    sub_new_ms = sub_new / n * 1000
    yardstick = python_c_ms if shape == "chain" else python_c4_ms  # like against like: 1 or 4 at a time
    figures: dict[str, Any] = {
        "tasks": n,
        "loop_s": round(loop, 6),
        "inprocess_s": round(inproc, 4),
        "subprocess_s": round(subproc, 4),
        "python_c_s": round(python_c_s, 4),
        "python_c_parallel4_s": round(python_c4_s, 4),
        "inprocess_overhead_ms_per_task": round(overhead_ms, 3),
        "subprocess_ms_per_task": round(sub_ms, 3),
        "subprocess_overhead_ms_per_task": round((subproc - loop) / n * 1000, 3),
        "python_c_ms": round(python_c_ms, 3),
        "python_c_parallel4_ms": round(python_c4_ms, 3),
        "subprocess_over_python_c_ratio": round(sub_ms / python_c_ms, 3),
        "subprocess_over_python_c_parallel4_ratio": round(sub_ms / python_c4_ms, 3),
        "subprocess_new_s": round(sub_new, 4),
        "subprocess_new_ms_per_task": round(sub_new_ms, 3),
        "subprocess_new_over_python_c_ratio": round(sub_new_ms / python_c_ms, 3),
        "subprocess_new_over_python_c_parallel4_ratio": round(sub_new_ms / python_c4_ms, 3),
        "inprocess_goal_met": overhead_ms <= IN_PROCESS_GOAL_MS,
        "subprocess_goal_met": sub_ms <= SUBPROCESS_GOAL_RATIO * yardstick,
        "subprocess_new_goal_met": sub_new_ms <= SUBPROCESS_GOAL_RATIO * yardstick,
    }
    for peer, result in peers.items():
        if "error" in result:
            continue
        peer_s = result[shape]["best_s"]
        figures[f"{peer}_s"] = round(peer_s, 4)
        figures[f"{peer}_cold_s"] = round(result[shape]["cold_s"], 4)
        figures[f"{peer}_overhead_ms_per_task"] = round((peer_s - loop) / n * 1000, 3)
        figures[f"{peer}_over_inprocess_ratio"] = round(peer_s / inproc, 2)
        figures[f"{peer}_over_subprocess_ratio"] = round(peer_s / subproc, 2)
        figures[f"{peer}_over_subprocess_new_ratio"] = round(peer_s / sub_new, 2)
        figures[f"below_{peer}"] = inproc < peer_s and subproc < peer_s
    return figures


def print_table(figures: dict[str, Any]) -> None:
    for peer, result in figures["peers"].items():
        if "error" in result:
            print(f"   {peer}: FAILED: {result['error'][-500:]}")
    print("   shape | plain loop | in-process (ovh/task) | subprocess (/task) | python -c (/start, 4 at a time) "
          "| sub/python-c | peers (peer/in-process, peer/subprocess)")
    for shape in SHAPES:
        f = figures[shape]
        peers = ", ".join(
            f"{p} {f[f'{p}_s']:.3f} s ({f[f'{p}_over_inprocess_ratio']:.1f}x, {f[f'{p}_over_subprocess_ratio']:.1f}x)"
            for p in figures["peers"] if f"{p}_s" in f)
        print(f"   {shape} ({f['tasks']}) | {f['loop_s'] * 1000:.3f} ms | {f['inprocess_s']:.3f} s "
              f"({f['inprocess_overhead_ms_per_task']:.2f} ms) | {f['subprocess_s']:.3f} s "
              f"({f['subprocess_ms_per_task']:.1f} ms) | {f['python_c_ms']:.1f} ms, "
              f"{f['python_c_parallel4_ms']:.1f} ms "
              f"| {f['subprocess_over_python_c_ratio']:.2f} ({f['subprocess_over_python_c_parallel4_ratio']:.2f}) "
              f"| {peers or 'none'}")
        print(f"      new interpreter per attempt (warm=False): {f['subprocess_new_s']:.3f} s "
              f"({f['subprocess_new_ms_per_task']:.1f} ms/task), / python -c "
              f"{f['subprocess_new_over_python_c_ratio']:.2f} "
              f"({f['subprocess_new_over_python_c_parallel4_ratio']:.2f} against 4 at a time)")
        below = ", ".join(f"{p} {f['below_' + p]}" for p in figures["peers"] if f"below_{p}" in f) or "n/a"
        print(f"      goals: in-process <= {IN_PROCESS_GOAL_MS:g} ms/task: {f['inprocess_goal_met']}; subprocess <= "
              f"{SUBPROCESS_GOAL_RATIO:g}x python -c: {f['subprocess_goal_met']} (warm=False: "
              f"{f['subprocess_new_goal_met']}); below peers: {below}")


def run(quick: bool) -> dict[str, Any]:
    """Measure the jobs engine's overhead per task against a plain loop, python -c and the peers."""
    n, repeat = (20, 1) if quick else (100, 3)
    figures: dict[str, Any] = {"anchor": ANCHOR, "tasks": n, "repeat": repeat}
    python_path = os.environ.get("PYTHONPATH")
    if python_path:  # `PYTHONPATH=src bench/run.py`: attempts run elsewhere and must import this mlharbor too
        os.environ["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in python_path.split(os.pathsep) if p)
    with tempfile.TemporaryDirectory(prefix="mlharbor-bench-jobs-") as tmp:
        project = Path(tmp)
        write_noops(project, n)
        sys.path.insert(0, str(project))
        sys.modules.pop("noops", None)
        cwd = os.getcwd()
        os.chdir(project)  # as `mlharbor jobs run` in a project: its settings, its metadata store
        try:
            times = measure_mlharbor(project, n, repeat)
        finally:
            if python_path:
                os.environ["PYTHONPATH"] = python_path
            os.chdir(cwd)
            sys.path.remove(str(project))
            sys.modules.pop("noops", None)
        figures["peers"] = {peer: run_peer(peer, project, n, repeat) for peer in ("prefect", "dagster")}
    for shape in SHAPES:
        figures[shape] = shape_figures(shape, n, times[shape], figures["peers"])
    print_table(figures)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
