"""Where a run came from: git commit and dirty flag, Python and package versions.

Recorded as run tags (MLflow's own ``mlflow.source.git.commit`` included, so MLflow's UI links it).
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

from mlharbor.tracking.requirements import distribution_version

PACKAGES = ("mlharbor", "mlflow", "numpy", "pandas", "pyarrow", "scikit-learn", "xgboost", "lightgbm", "torch")


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the git work tree at ``root``; (None, None) outside one or without git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def run_environment_tags(root: Path) -> dict[str, str]:
    """Tags describing the code and environment of a run started in project ``root``."""
    tags = {"mlharbor.python": platform.python_version()}
    versions = {p: v for p in PACKAGES if (v := distribution_version(p)) is not None}
    tags["mlharbor.packages"] = json.dumps(versions, sort_keys=True)
    commit, dirty = git_state(root)
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit
        tags["mlharbor.git.commit"] = commit
        tags["mlharbor.git.dirty"] = str(dirty).lower()
    return tags
