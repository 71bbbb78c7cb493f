"""Notebook tasks' pieces: parameter injection and a missing extra (runs: tests/unit/test_job_runner.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

from mlharbor.errors import InvalidArgument, MissingDependency
from mlharbor.jobs.notebooks import inject_parameters, parameters_source, run_notebook


def test_parameters_become_python_assignments() -> None:
    source = parameters_source({"rows": 3, "alpha": 0.5, "name": "it's", "flag": True, "none": None,
                                "tags": ["a", 1], "opts": {"k": [1.5, False]}, "big": float("inf")})
    namespace: dict[str, object] = {}
    exec(source, namespace)
    assert {k: namespace[k] for k in ("rows", "alpha", "name", "flag", "none", "tags", "opts", "big")} == {
        "rows": 3, "alpha": 0.5, "name": "it's", "flag": True, "none": None, "tags": ["a", 1],
        "opts": {"k": [1.5, False]}, "big": float("inf")}
    with pytest.raises(InvalidArgument, match="not a Python identifier"):
        parameters_source({"my-rows": 1})
    with pytest.raises(InvalidArgument, match="not a Python identifier"):
        parameters_source({"class": 1})
    with pytest.raises(InvalidArgument, match="JSON values"):
        parameters_source({"when": object()})


def test_injected_after_the_parameters_cell_or_first() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"),
                nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print(a)")]
    assert inject_parameters(nb, {"a": 2}, nbformat) == 2
    assert inject_parameters(nb, {"a": 3}, nbformat) == 2  # an output notebook run again: replaced, not stacked
    assert [c.source for c in nb.cells][1:3] == ["a = 1", "# Parameters (injected by mlharbor)\na = 3\n"]
    plain = nbformat.v4.new_notebook()
    plain.cells = [nbformat.v4.new_code_cell("print(a)")]
    assert inject_parameters(plain, {"a": 1}, nbformat) == 0 and len(plain.cells) == 2
    assert inject_parameters(plain, {}, nbformat) is None and len(plain.cells) == 1


def test_missing_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nbclient", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"mlharbor\[notebooks\]"):
        run_notebook("a.ipynb", {}, str(tmp_path), None)
