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
    import runpy

    monkeypatch.chdir(tmp_path)
    script = tmp_path / "features_md.py"  # a real file, so register_function can read a function's source
    script.write_text(_python_blocks(DOCS / "features.md"))
    namespace = runpy.run_path(str(script))
    df = namespace["df"].to_pylist()
    assert df[0]["trips_1d"] == 0 and df[0]["avg_fare_1d"] is None  # nothing before trip 1: the default
    assert df[1]["avg_fare_1d"] == 12.0  # trip 2 sees day 1 only
    assert namespace["scored"].column("avg_fare_1d").to_pylist() == [30.0]
    assert namespace["with_ratio"].load_df().column("fare_ratio").to_pylist() == [None, 2.5, None, None]
    assert namespace["online"].column("fare_ratio").to_pylist() == [0.667]
    assert namespace["status"].behind == 0
    out = capsys.readouterr().out
    assert "snapshot 1 3" in out and "[1, None]" in out


def test_models_guide_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlharbor.toml").write_text("[policy]\nwebhook_allow_private = true\n")
    code = _python_blocks(DOCS / "models.md").replace("https://ci.example.com/mlharbor", "http://127.0.0.1:9/hook")
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/models.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "1 None skops" in out
    assert namespace["result"].blessed is True  # type: ignore[attr-defined]
    assert namespace["request"].status.value == "pending"  # type: ignore[attr-defined]
    namespace["ws"].close()  # type: ignore[attr-defined]
