"""The docs' Python examples run as written."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _python_blocks(page: Path) -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))


def test_tables_guide_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code = _python_blocks(DOCS / "tables.md")
    assert "ws.sql" in code
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/tables.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "tip" in out  # the schema-evolution refusal names the new column
    ws = namespace["ws"]
    assert "dev.features.zone_fares" not in [t.name for t in ws.tables.list()]  # type: ignore[attr-defined]


def test_features_guide_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(_python_blocks(DOCS / "features.md"), "docs/features.md", "exec"), namespace)
    df = namespace["df"].to_pylist()  # type: ignore[attr-defined]
    assert df[0]["trips_1d"] == 0 and df[0]["avg_fare_1d"] is None  # nothing before trip 1: the default
    assert df[1]["avg_fare_1d"] == 12.0  # trip 2 sees day 1 only
    assert namespace["scored"].column("avg_fare_1d").to_pylist() == [30.0]  # type: ignore[attr-defined]
