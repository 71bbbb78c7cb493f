"""Job definitions, run_if rules and parameter references (the jobs engine's pure core)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlharbor.errors import InvalidArgument
from mlharbor.jobs import Dependency, Job, JobRunState, RunIf, Task, TaskKind, TaskState, task
from mlharbor.jobs.states import FAILURES, TERMINAL, decide, run_result
from mlharbor.jobs.templating import RenderContext, render

S, F, T, U, C, E, K = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.TIMED_OUT, TaskState.UPSTREAM_FAILED,
                       TaskState.CANCELLED, TaskState.EXCLUDED, TaskState.SKIPPED)


@task(retries=2, timeout_s=30)
def prepare(table: str = "dev.raw.trips") -> dict[str, int]:
    return {"rows": 3}


@task
def train(rows: int, alpha: float = 0.5) -> float:
    return rows * alpha


def py(key: str, *deps: str, **kw: object) -> Task:
    return Task(key, TaskKind.PYTHON, "tests.mod:fn", depends_on=tuple(Dependency(d) for d in deps), **kw)  # type: ignore[arg-type]


# --- run_if -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("run_if", "upstream", "expected"), [
    (RunIf.ALL_SUCCESS, [S, S], None),
    (RunIf.ALL_SUCCESS, [S, F], U),
    (RunIf.ALL_SUCCESS, [S, C], U),
    (RunIf.ALL_SUCCESS, [S, E], E),
    (RunIf.AT_LEAST_ONE_SUCCESS, [F, S], None),
    (RunIf.AT_LEAST_ONE_SUCCESS, [F, E], U),
    (RunIf.AT_LEAST_ONE_SUCCESS, [E, K], E),
    (RunIf.NONE_FAILED, [S, E], None),
    (RunIf.NONE_FAILED, [E, K], E),
    (RunIf.NONE_FAILED, [S, T], U),
    (RunIf.ALL_DONE, [F, C, E], None),
    (RunIf.AT_LEAST_ONE_FAILED, [S, T], None),
    (RunIf.AT_LEAST_ONE_FAILED, [S, E], K),
    (RunIf.ALL_FAILED, [F, U], None),
    (RunIf.ALL_FAILED, [F, S], K),
])
def test_run_if_rules(run_if: RunIf, upstream: list[TaskState], expected: TaskState | None) -> None:
    assert decide(run_if, upstream) == expected


@given(st.sampled_from(list(RunIf)), st.lists(st.sampled_from(sorted(TERMINAL)), min_size=1, max_size=5))
def test_run_if_is_total_and_consistent(run_if: RunIf, upstream: list[TaskState]) -> None:
    outcome = decide(run_if, upstream)
    assert outcome in (None, TaskState.UPSTREAM_FAILED, TaskState.EXCLUDED, TaskState.SKIPPED)
    assert decide(run_if, list(reversed(upstream))) == outcome  # order never matters
    if run_if is RunIf.ALL_SUCCESS:
        assert (outcome is None) == all(s is S for s in upstream)
    if run_if is RunIf.ALL_DONE:
        assert outcome is None
    if run_if is RunIf.AT_LEAST_ONE_FAILED:
        assert (outcome is None) == any(s in FAILURES for s in upstream)


def test_decide_refuses_unfinished_upstream_and_runs_roots() -> None:
    assert decide(RunIf.ALL_SUCCESS, []) is None
    with pytest.raises(ValueError, match="not finished"):
        decide(RunIf.ALL_DONE, [S, TaskState.RUNNING])


def test_run_result_from_leaves() -> None:
    assert run_result([S, E, K]) is JobRunState.SUCCEEDED
    assert run_result([S, T]) is JobRunState.FAILED
    assert run_result([S, C]) is JobRunState.CANCELLED
    assert run_result([C, U]) is JobRunState.FAILED


# --- definitions --------------------------------------------------------------------------------


def test_decorated_functions_become_tasks() -> None:
    assert train(4, 0.25) == 1.0  # still a plain function
    first = prepare.task()
    second = train.task(depends_on=["prepare"], parameters={"rows": "{{tasks.prepare.values.rows}}"},
                        run_if="all_done")
    assert first.target == f"{__name__}:prepare" and first.max_retries == 2 and first.timeout_s == 30
    assert second.run_if is RunIf.ALL_DONE and second.depends_on == (Dependency("prepare"),)
    job = Job("churn", [first, second], parameters={"table": "dev.raw.trips"})
    assert job.order() == ["prepare", "train"] and job.leaves() == ["train"]
    assert Job.from_dict(job.to_dict()) == job
    with pytest.raises(InvalidArgument, match="no parameters"):
        train.task(parameters={"beta": 1})
    with pytest.raises(InvalidArgument, match="unknown task options"):
        task(colour="red")


def test_local_functions_and_lambdas_are_refused() -> None:
    def inner() -> None:
        pass

    for fn in (inner, lambda: None):
        with pytest.raises(InvalidArgument, match="top-level function"):
            task(fn)


@pytest.mark.parametrize(("tasks", "fragment"), [
    ([], "no tasks"),
    ([py("a"), py("a")], "used twice"),
    ([py("a", "ghost")], "not a task"),
    ([py("a", "b"), py("b", "a")], "cycle"),
    ([py("a", "a")], "itself"),
    ([py("bad key")], "task key"),
    ([Task("a", TaskKind.PYTHON, "not a ref")], "module:function"),
    ([py("a", max_retries=-1)], "max_retries"),
    ([py("a", timeout_s=0)], "timeout_s"),
    ([Task("c", TaskKind.CONDITION, parameters={"left": 1, "op": "~", "right": 2})], "condition"),
    ([py("a"), Task("b", TaskKind.PYTHON, "m:f", depends_on=(Dependency("a", "true"),))], "condition task"),
    ([Task("f", TaskKind.FOR_EACH, parameters={"inputs": [1]})], "nested"),
    ([py("a"), py("b", parameters={"x": "{{tasks.c.values.y}}"}), py("c")], "not upstream"),
    ([Task("s", TaskKind.SQL)], "needs a target"),
])
def test_invalid_jobs_say_what_to_fix(tasks: list[Task], fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        Job("j", tasks)


def test_conditions_for_each_and_downstream() -> None:
    job = Job("branchy", [
        py("check"),
        Task("is_better", TaskKind.CONDITION, parameters={"left": "{{tasks.check.values.auc}}", "op": ">",
                                                          "right": 0.7}, depends_on=(Dependency("check"),)),
        Task("promote", TaskKind.PYTHON, "m:promote", depends_on=(Dependency("is_better", "true"),)),
        Task("each_zone", TaskKind.FOR_EACH, parameters={"inputs": [1, 2, 3]}, concurrency=2,
             nested=Task("score", TaskKind.PYTHON, "m:score", parameters={"zone": "{{input}}"}),
             depends_on=(Dependency("is_better", "false"),)),
    ])
    assert job.downstream(["is_better"]) == {"is_better", "promote", "each_zone"}
    assert sorted(job.leaves()) == ["each_zone", "promote"]
    assert Job.from_dict(job.to_dict()) == job
    bundle_style = Job.from_dict({"name": "b", "tasks": {"a": {"kind": "sql", "target": "SELECT 1"},
                                                         "b": {"kind": "python", "target": "m:f",
                                                               "depends_on": ["a"]}}})
    assert bundle_style.order() == ["a", "b"]
    with pytest.raises(InvalidArgument, match="unknown fields"):
        Job.from_dict({"name": "b", "tasks": [{"key": "a", "kind": "sql", "target": "x", "colour": 1}]})


# --- references ---------------------------------------------------------------------------------


def test_references_keep_types_and_fail_loudly() -> None:
    ctx = RenderContext("churn", "r1", {"table": "dev.raw.trips", "n": 5}, {"train": {"version": 3}}, item="zone-7",
                        has_item=True)
    params = {"v": "{{tasks.train.values.version}}", "msg": "v{{ tasks.train.values.version }} of {{job.name}}",
              "n": "{{job.parameters.n}}", "nested": [{"t": "{{job.parameters.table}}"}], "zone": "{{input}}",
              "plain": 1.5}
    assert render(params, ctx) == {"v": 3, "msg": "v3 of churn", "n": 5, "nested": [{"t": "dev.raw.trips"}],
                                   "zone": "zone-7", "plain": 1.5}
    for bad in ("{{tasks.train.values.nope}}", "{{job.parameters.missing}}", "{{jobs.name}}", "{{input}}"):
        with pytest.raises(InvalidArgument):
            render(bad, RenderContext("churn", "r1", {}, {"train": {"version": 3}}))


def test_every_pair_of_run_if_and_state_is_defined() -> None:
    for run_if, a, b in itertools.product(RunIf, sorted(TERMINAL), sorted(TERMINAL)):
        decide(run_if, [a, b])


def test_to_dict_is_plain_json() -> None:
    import json

    job = Job("j", [py("a", cache=True, cache_inputs=("dev.raw.t",))])
    raw = job.to_dict()
    assert json.loads(json.dumps(raw)) == raw  # no tuples: a stored definition compares equal to a new one
    assert Job.from_dict(raw) == job
