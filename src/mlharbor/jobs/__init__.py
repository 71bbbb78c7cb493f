"""Jobs: DAGs of tasks with parameters, task values, run_if, conditions, retries, timeouts and repair.

So far: definitions and their validation (:mod:`.definitions`), the task-state rules that decide
whether a task runs (:mod:`.states`), and parameter/task-value references (:mod:`.templating`).
"""

from mlharbor.jobs.definitions import Dependency, Job, Task, TaskKind, task
from mlharbor.jobs.states import JobRunState, RunIf, TaskState

__all__ = ["Dependency", "Job", "JobRunState", "RunIf", "Task", "TaskKind", "TaskState", "task"]
