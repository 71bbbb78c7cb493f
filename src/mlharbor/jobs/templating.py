"""References in task parameters: ``{{job.parameters.NAME}}``, ``{{tasks.KEY.values.NAME}}``,
``{{job.name}}``, ``{{run.id}}`` and, inside a for-each task, ``{{input}}``.

A parameter that is exactly one reference takes the referenced value with its type (a number stays a
number); references inside longer text are replaced by their text. An unknown reference is an error
naming it — a typo never becomes an empty string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mlharbor.errors import InvalidArgument

_REF = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")


@dataclass(frozen=True)
class RenderContext:
    job_name: str
    run_id: str
    parameters: dict[str, Any]
    task_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # task key -> values it set
    item: Any = None
    has_item: bool = False

    def lookup(self, ref: str) -> Any:
        parts = ref.split(".")
        if parts == ["input"] and self.has_item:
            return self.item
        if parts == ["job", "name"]:
            return self.job_name
        if parts == ["run", "id"]:
            return self.run_id
        if len(parts) == 3 and parts[:2] == ["job", "parameters"] and parts[2] in self.parameters:
            return self.parameters[parts[2]]
        if len(parts) == 4 and parts[0] == "tasks" and parts[2] == "values":
            values = self.task_values.get(parts[1])
            if values is not None and parts[3] in values:
                return values[parts[3]]
            raise InvalidArgument(f"{{{{{ref}}}}}: task {parts[1]!r} set no value {parts[3]!r} (is it upstream "
                                  "of this task, and did it succeed?)")
        raise InvalidArgument(f"unknown reference {{{{{ref}}}}}; use job.parameters.NAME, tasks.KEY.values.NAME, "
                              "job.name, run.id or input (in a for-each task)")


def render(value: Any, ctx: RenderContext) -> Any:
    """``value`` (text, list or mapping, nested) with every reference resolved."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole:
            return ctx.lookup(whole.group(1))
        return _REF.sub(lambda m: _text(ctx.lookup(m.group(1))), value)
    if isinstance(value, list | tuple):
        return [render(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: render(v, ctx) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def referenced_tasks(value: Any) -> set[str]:
    """Task keys named by ``{{tasks.KEY.values...}}`` references in ``value``."""
    found: set[str] = set()
    if isinstance(value, str):
        for ref in _REF.findall(value):
            parts = ref.split(".")
            if parts[0] == "tasks" and len(parts) >= 2:
                found.add(parts[1])
    elif isinstance(value, list | tuple):
        for v in value:
            found |= referenced_tasks(v)
    elif isinstance(value, dict):
        for v in value.values():
            found |= referenced_tasks(v)
    return found
