"""Task caching: reused for the same code, parameters and input table versions; expiry and force."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from mlharbor.errors import InvalidArgument
from mlharbor.jobs import Job, Task, TaskKind
from mlharbor.workspace import Workspace

CODE = '''
from pathlib import Path

def work(n, counter):
    p = Path(counter)
    p.write_text(str(int(p.read_text()) + 1 if p.exists() else 1))
    return {"double": n * 2}
'''


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    (tmp_path / "cached_tasks.py").write_text(CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    with Workspace.open(tmp_path) as w:
        w.tables.write("dev.raw.src", pa.table({"x": [1]}))
        yield w


def job(counter: Path, n: int = 2, **options: object) -> Job:
    params = {"n": n, "counter": str(counter)}
    return Job("cached", [Task("work", TaskKind.PYTHON, "cached_tasks:work", parameters=params, cache=True,
                               **options)])  # type: ignore[arg-type]


def runs(counter: Path) -> int:
    return int(counter.read_text())


def test_same_code_parameters_and_inputs_reuse_the_result(ws: Workspace, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    first = ws.jobs.run(job(counter, cache_inputs=("dev.raw.src",)), executor="in_process")
    second = ws.jobs.run(job(counter, cache_inputs=("dev.raw.src",)), executor="in_process")
    assert runs(counter) == 1 and second.state == "succeeded"
    task = ws.jobs.task_runs(second.id)[0]
    assert task.cached_from == first.id and task.values == {"double": 4}
    ws.jobs.run(job(counter, n=3, cache_inputs=("dev.raw.src",)), executor="in_process")
    assert runs(counter) == 2  # other parameters
    ws.tables.write("dev.raw.src", pa.table({"x": [2]}), mode="append")
    ws.jobs.run(job(counter, cache_inputs=("dev.raw.src",)), executor="in_process")
    assert runs(counter) == 3  # a new version of an input table
    ws.jobs.run(job(counter, cache_inputs=("dev.raw.src",)), executor="in_process", force=True)
    assert runs(counter) == 4  # forced
    (tmp_path / "cached_tasks.py").write_text(CODE + "\n# changed\n")
    ws.jobs.run(job(counter, cache_inputs=("dev.raw.src",)), executor="subprocess")
    assert runs(counter) == 5  # the code changed


def test_expiry_and_failures_are_not_cached(ws: Workspace, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    ws.jobs.run(job(counter, cache_ttl_s=0.2), executor="in_process")
    time.sleep(0.3)
    ws.jobs.run(job(counter, cache_ttl_s=0.2), executor="in_process")
    assert runs(counter) == 2
    failing = Job("bad", [Task("work", TaskKind.PYTHON, "cached_tasks:work", parameters={"n": 1}, cache=True)])
    assert ws.jobs.run(failing, executor="in_process").state == "failed"
    assert ws.jobs.run(failing, executor="in_process").state == "failed"  # nothing cached from a failure
    with pytest.raises(InvalidArgument, match="can be cached"):
        Job("j", [Task("c", TaskKind.CONDITION, parameters={"left": 1, "op": "==", "right": 1}, cache=True)])
