"""Cache keys of task attempts: the code a task runs, its rendered parameters, its input table versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mlharbor.errors import InvalidArgument
from mlharbor.jobs.definitions import Task, TaskKind


def code_fingerprint(t: Task, work_dir: Path | None) -> str:
    """SHA-256 of the code a task runs: the module file of a python target, the script, the SQL text."""
    import importlib.util
    import sys

    if t.kind is TaskKind.SQL:
        return hashlib.sha256(t.target.encode()).hexdigest()
    if t.kind is TaskKind.SCRIPT:
        path = (work_dir or Path.cwd()) / t.target
    else:
        module = t.target.partition(":")[0]
        added = work_dir is not None and str(work_dir) not in sys.path
        if added:
            sys.path.insert(0, str(work_dir))
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        finally:
            if added:
                sys.path.remove(str(work_dir))
        if spec is None or not spec.origin or not Path(spec.origin).is_file():
            raise InvalidArgument(f"cannot find the code of {t.target} to key its cache")
        path = Path(spec.origin)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        raise InvalidArgument(f"cannot read {path} to key the cache of task {t.key}") from None


def cache_key(t: Task, params: dict[str, Any], inputs: dict[str, int], work_dir: Path | None) -> str:
    """The cache key of a task attempt: code, rendered parameters and input table versions."""
    document = {"kind": t.kind.value, "target": t.target, "code": code_fingerprint(t, work_dir),
                "parameters": params, "inputs": inputs}
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
