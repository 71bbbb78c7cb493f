"""Job definitions: tasks, their dependencies and options, validated as a DAG.

A :class:`Job` is a named set of :class:`Task` s. Each task has a key (an identifier unique in the
job), a kind, what it runs, parameters, the tasks it depends on and the ``run_if`` rule applied to
them (:mod:`mlharbor.jobs.states`), retries, a timeout and caching. Definitions are plain frozen
data: JSON round-trips them (``to_dict``/``from_dict``), and ``mlharbor.yml`` bundles produce them.

In Python, ``@task`` turns an importable function into a task template; calling the template's
``.task(...)`` (or the template itself) makes a task of a job::

    @task(retries=2, timeout_s=600)
    def train(table: str, alpha: float = 0.5) -> dict: ...

    job = Job("churn", [
        prepare.task(),
        train.task(depends_on=["prepare"], parameters={"table": "{{job.parameters.table}}"}),
    ], parameters={"table": "dev.features.churn"})
"""

from __future__ import annotations

import inspect
import json
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, overload

from mlharbor.errors import InvalidArgument
from mlharbor.jobs.schedules import Schedule
from mlharbor.jobs.states import RunIf
from mlharbor.jobs.templating import referenced_tasks
from mlharbor.jobs.triggers import Trigger, trigger_from_dict, trigger_to_dict

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {"==": operator.eq, "!=": operator.ne, ">": operator.gt,
                                               ">=": operator.ge, "<": operator.lt, "<=": operator.le}
CONDITION_OPS = tuple(_OPS)


class TaskKind(StrEnum):
    PYTHON = "python"  # target: "module:function"; parameters bind to its arguments
    SCRIPT = "script"  # target: a .py file under the project; parameters become --name value arguments
    SQL = "sql"  # target: DuckDB SQL over lake tables
    NOTEBOOK = "notebook"  # target: an .ipynb file under the project, executed headless, output kept
    RUN_JOB = "run_job"  # target: another job's name; parameters become its job parameters
    CONDITION = "condition"  # parameters: left, op, right; downstream tasks pick the true or false outcome
    FOR_EACH = "for_each"  # parameters: inputs; ``nested`` runs once per input
    APPROVAL = "approval"  # parameters: request_id; waits until the registry request is decided


def evaluate_condition(left: Any, op: str, right: Any) -> bool:
    """Compare two rendered values; numbers compare as numbers, anything else as text."""
    def number(v: Any) -> float | None:
        if isinstance(v, bool):
            return None
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    a, b = number(left), number(right)
    if a is not None and b is not None:
        return _OPS[op](a, b)
    if op not in ("==", "!="):
        raise InvalidArgument(f"cannot compare {left!r} {op} {right!r}: ordering needs two numbers")
    return _OPS[op](json.dumps(left, sort_keys=True, default=str), json.dumps(right, sort_keys=True, default=str))


def check_key(key: str, what: str = "task key") -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidArgument(f"{what} {key!r} must start with a letter or _ and use letters, digits, _ or - "
                              "(at most 100 characters)")
    return key


@dataclass(frozen=True)
class Dependency:
    """An upstream task; ``outcome`` ("true"/"false") follows one branch of a condition task."""

    task: str
    outcome: str | None = None


@dataclass(frozen=True)
class Task:
    """One task of a job (see the module docstring)."""

    key: str
    kind: TaskKind
    target: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[Dependency, ...] = ()
    run_if: RunIf = RunIf.ALL_SUCCESS
    max_retries: int = 0
    min_retry_interval_s: float = 0.0
    retry_backoff: float = 2.0  # each retry waits this many times longer than the one before
    timeout_s: float | None = None
    cache: bool = False  # reuse a result with the same code hash, parameters and input table versions
    cache_ttl_s: float | None = None
    cache_inputs: tuple[str, ...] = ()  # tables whose versions are part of the cache key
    concurrency: int = 1  # for_each: nested runs at once
    nested: Task | None = None  # for_each: the task run once per input

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["kind"], raw["run_if"] = self.kind.value, self.run_if.value
        raw["depends_on"] = [asdict(d) for d in self.depends_on]
        raw["cache_inputs"] = list(self.cache_inputs)
        raw["nested"] = None if self.nested is None else self.nested.to_dict()
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Task:
        """A task from ``to_dict`` output or a bundle file (unknown fields refused)."""
        if not isinstance(raw, dict):
            raise InvalidArgument("a task is a mapping of its fields")
        unknown = set(raw) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise InvalidArgument(f"task {raw.get('key', '?')!r}: unknown fields {sorted(unknown)}")
        data = dict(raw)
        try:
            data["kind"] = TaskKind(data.get("kind", "python"))
            data["run_if"] = RunIf(data.get("run_if", RunIf.ALL_SUCCESS.value))
        except ValueError as exc:
            raise InvalidArgument(f"task {raw.get('key', '?')!r}: {exc}") from None
        data["depends_on"] = tuple(_dependency(d) for d in data.get("depends_on", ()))
        data["cache_inputs"] = tuple(str(x) for x in data.get("cache_inputs", ()))
        if data.get("nested") is not None:
            data["nested"] = cls.from_dict(data["nested"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidArgument(f"task {raw.get('key', '?')!r}: {exc}") from None


def _dependency(value: str | Dependency | dict[str, Any]) -> Dependency:
    if isinstance(value, Dependency):
        return value
    if isinstance(value, str):
        return Dependency(value)
    if isinstance(value, dict) and set(value) <= {"task", "outcome"} and "task" in value:
        return Dependency(str(value["task"]), None if value.get("outcome") is None else str(value["outcome"]))
    raise InvalidArgument(f"a dependency is a task key or {{task, outcome}}, not {value!r}")


def _check_task(t: Task) -> None:
    check_key(t.key)
    for name, number in (("max_retries", t.max_retries), ("min_retry_interval_s", t.min_retry_interval_s),
                         ("retry_backoff", t.retry_backoff), ("timeout_s", t.timeout_s), ("cache_ttl_s", t.cache_ttl_s),
                         ("concurrency", t.concurrency)):
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
            raise InvalidArgument(f"task {t.key}: {name} must be a number, not {number!r}")
    if t.max_retries < 0 or t.max_retries > 100:
        raise InvalidArgument(f"task {t.key}: max_retries must be between 0 and 100")
    if not 0 <= t.min_retry_interval_s <= 86_400 or not 1 <= t.retry_backoff <= 10:
        raise InvalidArgument(f"task {t.key}: min_retry_interval_s must be between 0 and 86400 and retry_backoff "
                              "between 1 and 10")
    if t.timeout_s is not None and t.timeout_s <= 0:
        raise InvalidArgument(f"task {t.key}: timeout_s must be positive")
    if t.cache and t.kind not in (TaskKind.PYTHON, TaskKind.SCRIPT, TaskKind.SQL):
        raise InvalidArgument(f"task {t.key}: only python, script and sql tasks can be cached")
    if t.cache_ttl_s is not None and t.cache_ttl_s <= 0:
        raise InvalidArgument(f"task {t.key}: cache_ttl_s must be positive")
    if t.kind is TaskKind.PYTHON and not _REF.match(t.target):
        raise InvalidArgument(f"task {t.key}: a python task's target is 'module:function', not {t.target!r}")
    if t.kind in (TaskKind.SCRIPT, TaskKind.SQL, TaskKind.NOTEBOOK, TaskKind.RUN_JOB) and not t.target.strip():
        raise InvalidArgument(f"task {t.key}: a {t.kind.value} task needs a target")
    if t.kind is TaskKind.NOTEBOOK and not t.target.endswith(".ipynb"):
        raise InvalidArgument(f"task {t.key}: a notebook task's target is an .ipynb file of the project, "
                              f"not {t.target!r}")
    if t.kind is TaskKind.CONDITION:
        missing = {"left", "op", "right"} - set(t.parameters)
        if missing or t.parameters.get("op") not in CONDITION_OPS:
            raise InvalidArgument(f"task {t.key}: a condition needs parameters left, op ({', '.join(CONDITION_OPS)}) "
                                  "and right")
    if t.kind is TaskKind.APPROVAL and "request_id" not in t.parameters:
        raise InvalidArgument(f"task {t.key}: an approval task waits for parameters.request_id")
    if t.kind is TaskKind.FOR_EACH:
        if t.nested is None or "inputs" not in t.parameters:
            raise InvalidArgument(f"task {t.key}: a for_each task needs parameters.inputs and a nested task")
        if not 1 <= t.concurrency <= 100:
            raise InvalidArgument(f"task {t.key}: concurrency must be between 1 and 100")
        _check_task(t.nested)
    elif t.nested is not None:
        raise InvalidArgument(f"task {t.key}: only for_each tasks have a nested task")


@dataclass(frozen=True)
class Job:
    """A named DAG of tasks with job parameters (defaults that a run may override)."""

    name: str
    tasks: tuple[Task, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    max_concurrent_runs: int = 1
    timeout_s: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""
    schedule: Schedule | None = None
    trigger: Trigger | None = None
    run_as: str | None = None  # the principal runs act as (tasks open the workspace as it); None: the deployer
    target: str | None = None  # the workspace target the job was deployed to (set by ws.jobs.deploy)

    def __init__(self, name: str, tasks: Iterable[Task], parameters: dict[str, Any] | None = None,
                 max_concurrent_runs: int = 1, timeout_s: float | None = None, tags: dict[str, str] | None = None,
                 description: str = "", schedule: Schedule | str | None = None,
                 trigger: Trigger | None = None, run_as: str | None = None, target: str | None = None) -> None:
        object.__setattr__(self, "name", check_key(name, "job name"))
        object.__setattr__(self, "tasks", tuple(tasks))
        object.__setattr__(self, "parameters", dict(parameters or {}))
        object.__setattr__(self, "max_concurrent_runs", max_concurrent_runs)
        object.__setattr__(self, "timeout_s", timeout_s)
        object.__setattr__(self, "tags", {str(k): str(v) for k, v in (tags or {}).items()})
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "schedule", Schedule(schedule) if isinstance(schedule, str) else schedule)
        object.__setattr__(self, "trigger", trigger)
        object.__setattr__(self, "run_as", run_as or None)
        object.__setattr__(self, "target", target or None)
        self.validate()

    def validate(self) -> None:
        """InvalidArgument naming the problem: duplicate keys, unknown dependencies, branches on tasks
        that are not conditions, cycles, bad options."""
        if not self.tasks:
            raise InvalidArgument(f"job {self.name} has no tasks")
        if not 1 <= self.max_concurrent_runs <= 1000:
            raise InvalidArgument("max_concurrent_runs must be between 1 and 1000")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise InvalidArgument("a job's timeout_s must be positive")
        if self.run_as is not None and (not isinstance(self.run_as, str) or not self.run_as.strip()):
            raise InvalidArgument("run_as names a principal")
        by_key: dict[str, Task] = {}
        for t in self.tasks:
            if not isinstance(t, Task):
                raise InvalidArgument(f"job {self.name}: {t!r} is not a Task")
            _check_task(t)
            if t.key in by_key:
                raise InvalidArgument(f"job {self.name}: task key {t.key!r} is used twice")
            by_key[t.key] = t
        for t in self.tasks:
            ancestors = self._ancestors(t.key, by_key)
            for ref in sorted(referenced_tasks(t.parameters)):
                if ref not in ancestors:
                    raise InvalidArgument(f"task {t.key} reads values of {ref!r}, which is not upstream of it")
            for dep in t.depends_on:
                upstream = by_key.get(dep.task)
                if upstream is None:
                    raise InvalidArgument(f"task {t.key} depends on {dep.task!r}, which is not a task of {self.name}")
                if dep.task == t.key:
                    raise InvalidArgument(f"task {t.key} depends on itself")
                if dep.outcome is not None and (upstream.kind is not TaskKind.CONDITION
                                                or dep.outcome not in ("true", "false")):
                    raise InvalidArgument(f"task {t.key}: outcome {dep.outcome!r} needs a condition task upstream "
                                          "and is 'true' or 'false'")
        self.order()

    @staticmethod
    def _ancestors(key: str, by_key: dict[str, Task]) -> set[str]:
        seen: set[str] = set()
        stack = [d.task for d in by_key[key].depends_on]
        while stack:
            k = stack.pop()
            if k not in seen and k in by_key:
                seen.add(k)
                stack.extend(d.task for d in by_key[k].depends_on)
        return seen

    def task(self, key: str) -> Task:
        for t in self.tasks:
            if t.key == key:
                return t
        raise InvalidArgument(f"job {self.name} has no task {key!r}")

    def order(self) -> list[str]:
        """Task keys in a dependency order (ties by definition order); InvalidArgument on a cycle."""
        remaining = {t.key: {d.task for d in t.depends_on} for t in self.tasks}
        done: list[str] = []
        while remaining:
            ready = [k for k, deps in remaining.items() if deps <= set(done)]
            if not ready:
                raise InvalidArgument(f"job {self.name} has a dependency cycle among {sorted(remaining)}")
            for key in ready:
                done.append(key)
                del remaining[key]
        return done

    def downstream(self, keys: Iterable[str]) -> set[str]:
        """``keys`` and every task that depends on them, directly or not."""
        found = set(keys)
        changed = True
        while changed:
            changed = False
            for t in self.tasks:
                if t.key not in found and any(d.task in found for d in t.depends_on):
                    found.add(t.key)
                    changed = True
        return found

    def leaves(self) -> list[str]:
        """Tasks nothing depends on: they decide the run's result."""
        upstream = {d.task for t in self.tasks for d in t.depends_on}
        return [t.key for t in self.tasks if t.key not in upstream]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tasks": [t.to_dict() for t in self.tasks], "parameters": dict(self.parameters),
                "max_concurrent_runs": self.max_concurrent_runs, "timeout_s": self.timeout_s,
                "tags": dict(self.tags), "description": self.description,
                "schedule": None if self.schedule is None else self.schedule.to_dict(),
                "trigger": None if self.trigger is None else trigger_to_dict(self.trigger),
                "run_as": self.run_as, "target": self.target}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Job:
        if not isinstance(raw, dict) or "name" not in raw:
            raise InvalidArgument("a job is a mapping with a name and tasks")
        unknown = set(raw) - {"name", "tasks", "parameters", "max_concurrent_runs", "timeout_s", "tags", "description",
                              "schedule", "trigger", "run_as", "target"}
        if unknown:
            raise InvalidArgument(f"job {raw['name']!r}: unknown fields {sorted(unknown)}")
        tasks = raw.get("tasks") or []
        if isinstance(tasks, dict):  # bundle style: {key: {...}}
            tasks = [{"key": k, **v} for k, v in tasks.items()]
        schedule = None if raw.get("schedule") is None else Schedule.from_dict(raw["schedule"])
        trigger = None if raw.get("trigger") is None else trigger_from_dict(raw["trigger"])
        return cls(str(raw["name"]), [Task.from_dict(t) for t in tasks], raw.get("parameters"),
                   int(raw.get("max_concurrent_runs", 1)), raw.get("timeout_s"), raw.get("tags"),
                   str(raw.get("description", "")), schedule, trigger, raw.get("run_as"), raw.get("target"))


def replace_job(job: Job, **changes: Any) -> Job:
    """A copy of ``job`` with some fields changed, given as in ``to_dict`` (validated again)."""
    return Job.from_dict({**job.to_dict(), **changes})


def function_ref(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of an importable top-level function (what executors in other processes import)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<locals>" in qualname or "<lambda>" in qualname or module == "__main__":
        raise InvalidArgument(f"{qualname or fn!r} must be a top-level function of an importable module to be "
                              "a task (not a lambda, a nested function or a function of __main__)")
    return f"{module}:{qualname}"


@dataclass(frozen=True)
class TaskTemplate:
    """A function made into a task by ``@task``: call ``.task(...)`` (or the template) to place it in a job."""

    fn: Callable[..., Any]
    defaults: dict[str, Any]

    def task(self, key: str | None = None, *, depends_on: Sequence[str | Dependency] = (),
             parameters: dict[str, Any] | None = None, **options: Any) -> Task:
        unknown = set(parameters or {}) - set(inspect.signature(self.fn).parameters)
        if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD
                               for p in inspect.signature(self.fn).parameters.values()):
            raise InvalidArgument(f"{self.fn.__qualname__} has no parameters {sorted(unknown)}")
        base = Task(key=check_key(key or self.fn.__name__), kind=TaskKind.PYTHON, target=function_ref(self.fn),
                    parameters=dict(parameters or {}), depends_on=tuple(_dependency(d) for d in depends_on))
        merged = {**self.defaults, **options}
        if "run_if" in merged:
            merged["run_if"] = RunIf(merged["run_if"])
        try:
            return replace(base, **merged)
        except TypeError as exc:
            raise InvalidArgument(f"task {base.key}: {exc}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (tasks stay plain, testable functions)."""
        return self.fn(*args, **kwargs)


_OPTION_NAMES = {"run_if", "max_retries", "min_retry_interval_s", "retry_backoff", "timeout_s", "cache", "cache_ttl_s",
                 "cache_inputs"}


@overload
def task(fn: Callable[..., Any], /) -> TaskTemplate: ...
@overload
def task(*, retries: int = 0, **options: Any) -> Callable[[Callable[..., Any]], TaskTemplate]: ...
def task(fn: Callable[..., Any] | None = None, /, *, retries: int = 0,
         **options: Any) -> TaskTemplate | Callable[[Callable[..., Any]], TaskTemplate]:
    """Make an importable function a task template (``@task`` or ``@task(retries=2, timeout_s=60)``)."""
    unknown = set(options) - _OPTION_NAMES
    if unknown:
        known = ", ".join(sorted(_OPTION_NAMES))
        raise InvalidArgument(f"unknown task options {sorted(unknown)}; use retries, {known}")
    defaults = {**options, "max_retries": retries}

    def wrap(f: Callable[..., Any]) -> TaskTemplate:
        function_ref(f)
        return TaskTemplate(f, defaults)

    return wrap(fn) if fn is not None else wrap
