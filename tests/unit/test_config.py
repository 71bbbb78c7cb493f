from pathlib import Path

import pytest

from mlharbor.config import load_settings
from mlharbor.core.entities import Environment
from mlharbor.errors import InvalidArgument


def test_embedded_default_uses_dot_mlharbor(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    assert s.project_root == tmp_path.resolve()
    assert s.target == "dev"
    assert set(s.targets) == {"dev", "staging", "prod"}
    assert s.current.lake_uri == str(tmp_path.resolve() / ".mlharbor" / "lake")
    assert s.current.metadata_url == f"sqlite:///{tmp_path.resolve() / '.mlharbor' / 'metadata.db'}"
    assert s.targets["prod"].environment is Environment.PROD


def test_toml_overrides_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "mlharbor.toml").write_text(
        '[workspace]\ndefault_target = "staging"\n'
        '[targets.staging]\ncatalog = "stg"\nlake_uri = "data/lake"\n'
        '[targets.prod]\nlake_uri = "s3://bucket/lake"\nmetadata_url = "postgresql+psycopg://u@h/db"\n'
        'storage_options = { AWS_REGION = "eu-west-1" }\n'
    )
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    s = load_settings(sub, environ={})  # found by walking up, like git
    assert s.project_root == tmp_path.resolve()
    assert s.target == "staging"
    assert s.current.catalog == "stg"
    assert s.current.lake_uri == str(tmp_path.resolve() / "data" / "lake")
    assert s.targets["prod"].lake_uri == "s3://bucket/lake"
    assert s.targets["prod"].storage_options == {"AWS_REGION": "eu-west-1"}
    assert s.target_for_catalog("stg") is s.targets["staging"]


def test_environment_variables_override(tmp_path: Path) -> None:
    env = {"MLHARBOR_TARGET": "prod", "MLHARBOR_METADATA_URL": "sqlite:///x.db", "MLHARBOR_LAKE_URI": "/srv/lake"}
    s = load_settings(tmp_path, environ=env)
    assert s.target == "prod"
    assert s.current.metadata_url == f"sqlite:///{tmp_path.resolve() / 'x.db'}"
    assert s.current.lake_uri == "/srv/lake"
    # the targets that shared the store moved with it; the lake override stays with the target
    assert s.targets["dev"].metadata_url == s.current.metadata_url
    assert s.targets["dev"].lake_uri != "/srv/lake"
    # explicit argument beats the environment
    assert load_settings(tmp_path, target="dev", environ=env).target == "dev"


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("[targets.dev]\nlake_uri = 3\n", "lake_uri"),
        ("[targets.dev]\nbogus = 1\n", "bogus"),
        ("[nope]\n", "unknown sections"),
        ("server = 3\n", "must be a table"),
        ("targets = 'x'\n", "must be a table"),
        ("[workspace]\ncolour = 'red'\n", "colour"),
        ("[targets.qa]\ncatalog = 'qa'\n", "environment"),
        ("not toml = = =", "not valid TOML"),
        ("[targets.staging]\ncatalog = 'prod'\n", "more than one target"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, toml: str, fragment: str) -> None:
    (tmp_path / "mlharbor.toml").write_text(toml)
    with pytest.raises(InvalidArgument, match=fragment):
        load_settings(tmp_path, environ={})


def test_unknown_target(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unknown target 'qa'"):
        load_settings(tmp_path, target="qa", environ={})


def test_settings_are_not_read_at_import() -> None:
    import subprocess
    import sys

    code = "import mlharbor, mlharbor.config, sys; print('mlharbor.workspace' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "False"
