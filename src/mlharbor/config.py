"""Settings: read explicitly when a workspace is opened, never at import.

Sources, later ones winning:

1. built-in defaults — the *embedded default*: targets ``dev``, ``staging`` and ``prod`` whose
   catalogs share one local Delta lake under ``./.mlharbor/lake`` and one SQLite metadata store
   ``./.mlharbor/metadata.db``;
2. ``mlharbor.toml`` in the project root (found by walking up from the working directory, like
   ``git``), whose ``[targets.NAME]`` tables override the defaults field by field;
3. ``MLHARBOR_*`` environment variables: ``MLHARBOR_TARGET`` picks the target, and
   ``MLHARBOR_LAKE_URI``, ``MLHARBOR_METADATA_URL``, ``MLHARBOR_CATALOG``, ``MLHARBOR_ONLINE_STORE``,
   ``MLHARBOR_TRACKING_URI``, ``MLHARBOR_ARTIFACT_ROOT`` override the selected target's fields
   (``MLHARBOR_METADATA_URL`` also moves every target that shared its store).

Unknown keys are rejected with a message naming them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlharbor.core.entities import Environment
from mlharbor.core.names import check_identifier
from mlharbor.errors import InvalidArgument

CONFIG_FILE = "mlharbor.toml"
HOME_DIR = ".mlharbor"

__all__ = ["CONFIG_FILE", "HOME_DIR", "PolicySettings", "Settings", "TargetSettings", "find_project_root",
           "load_settings"]


class TargetSettings(BaseModel):
    """One deployment target: its catalog (an environment) and the stores it uses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog: str
    environment: Environment
    lake_uri: str
    metadata_url: str
    online_store: str
    online_store_options: dict[str, Any] = Field(default_factory=dict)  # e.g. {prefix = "mlh-prod"} for Redis
    storage_options: dict[str, str] = Field(default_factory=dict)
    # MLflow: the tracking and registry database and where run artifacts (models) are written
    tracking_uri: str
    artifact_root: str


class PolicySettings(BaseModel):
    """Workspace-wide rules of the model registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allow_pickle_models: bool = False  # load models serialised with pickle (unsafe with untrusted artifacts)
    allow_self_approval: bool = False  # approve one's own transition request
    webhook_allow_private: bool = False  # deliver webhooks to private, loopback and link-local addresses
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)  # then the delivery is marked failed
    webhook_backoff_seconds: float = Field(default=5.0, gt=0, le=3600)  # first retry; doubles up to an hour
    # let API callers run job tasks in the server's own process (executor "in_process"): user code
    # there shares the server's memory, credentials included, and cannot be killed at a timeout
    allow_in_process_jobs: bool = False


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8080
    token_ttl_days: int = Field(default=90, gt=0, le=3650)


class Settings(BaseModel):
    """Everything a workspace needs, with paths already resolved against the project root."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_root: Path
    home: Path
    target: str
    targets: dict[str, TargetSettings]
    server: ServerSettings = Field(default_factory=ServerSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)

    @property
    def current(self) -> TargetSettings:
        return self.targets[self.target]

    def target_for_catalog(self, catalog: str) -> TargetSettings | None:
        """The target whose catalog is ``catalog`` (catalogs name environments)."""
        for t in self.targets.values():
            if t.catalog == catalog:
                return t
        return None


def find_project_root(start: str | Path | None = None) -> Path:
    """The nearest directory at or above ``start`` holding ``mlharbor.toml``; else ``start``."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_FILE).is_file():
            return d
    return here


def _default_targets(home: Path) -> dict[str, dict[str, Any]]:
    lake = str(home / "lake")
    meta = f"sqlite:///{home / 'metadata.db'}"
    online = f"sqlite:///{home / 'online.db'}"
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    artifacts = str(home / "mlartifacts")
    return {
        env.value: {"catalog": env.value, "environment": env.value, "lake_uri": lake, "metadata_url": meta,
                    "online_store": online, "tracking_uri": tracking, "artifact_root": artifacts}
        for env in Environment
    }


def _resolve_local(value: str, root: Path) -> str:
    """Make relative local paths and SQLite URLs absolute against the project root."""
    if value.startswith("sqlite:///"):
        path = value.removeprefix("sqlite:///")
        if path and path != ":memory:" and not Path(path).is_absolute():
            return f"sqlite:///{(root / path).resolve()}"
        return value
    if "://" in value:
        return value  # object store or server URL: passed through untouched
    p = Path(value)
    return str(p if p.is_absolute() else (root / p).resolve())


def _read_file(cfg_file: Path) -> dict[str, Any]:
    if not cfg_file.is_file():
        return {}
    try:
        raw = tomllib.loads(cfg_file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"{cfg_file}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"workspace", "targets", "server", "policy"}
    if unknown:
        raise InvalidArgument(f"{cfg_file}: unknown sections {sorted(unknown)}; use workspace, targets, server, policy")
    for section, value in raw.items():
        if not isinstance(value, dict):
            raise InvalidArgument(f"{cfg_file}: {section} must be a table ([{section}]), not {type(value).__name__}")
    return raw


def _merge_targets(home: Path, raw: dict[str, Any], cfg_file: Path) -> dict[str, dict[str, Any]]:
    """Built-in targets overridden field by field by ``[targets.NAME]``."""
    targets = _default_targets(home)
    for name, overrides in dict(raw.get("targets", {})).items():
        check_identifier(name, "target name")
        if not isinstance(overrides, dict):
            raise InvalidArgument(f"{cfg_file}: [targets.{name}] must be a table")
        dev = targets["dev"]
        base = targets.get(name, {"catalog": name, "environment": name, "online_store": dev["online_store"],
                                  "tracking_uri": dev["tracking_uri"], "artifact_root": dev["artifact_root"]})
        targets[name] = {**base, **overrides}
        if name not in Environment._value2member_map_ and "environment" not in overrides:
            raise InvalidArgument(f"{cfg_file}: target {name!r} needs environment = 'dev', 'staging' or 'prod'")
    return targets


def _normalise_targets(targets: dict[str, dict[str, Any]], root: Path, cfg_file: Path) -> None:
    """Resolve local paths against the project root; refuse catalogs shared by two targets."""
    for t in targets.values():
        for key in ("lake_uri", "metadata_url", "online_store", "tracking_uri", "artifact_root"):
            if isinstance(t.get(key), str):
                t[key] = _resolve_local(t[key], root)
        if isinstance(t.get("catalog"), str):
            t["catalog"] = check_identifier(t["catalog"], "catalog name")
    catalogs = [t.get("catalog") for t in targets.values()]
    duplicates = sorted({str(c) for c in catalogs if catalogs.count(c) > 1})
    if duplicates:
        raise InvalidArgument(
            f"{cfg_file}: catalog {', '.join(repr(c) for c in duplicates)} is used by more than one target; "
            "each target needs its own catalog name"
        )


def load_settings(
    path: str | Path | None = None,
    target: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build :class:`Settings` for the project at or above ``path`` (default: the working dir)."""
    env = os.environ if environ is None else environ
    root = find_project_root(path)
    home = Path(env.get("MLHARBOR_HOME") or root / HOME_DIR)
    cfg_file = root / CONFIG_FILE
    raw = _read_file(cfg_file)
    ws_section = dict(raw.get("workspace", {}))
    if "home" in ws_section:
        home = Path(_resolve_local(str(ws_section.pop("home")), root))
    default_target = str(ws_section.pop("default_target", "dev"))
    if ws_section:
        raise InvalidArgument(f"{cfg_file}: unknown keys in [workspace]: {sorted(ws_section)}")

    targets = _merge_targets(home, raw, cfg_file)
    chosen = target or env.get("MLHARBOR_TARGET") or default_target
    if chosen not in targets:
        raise InvalidArgument(f"unknown target {chosen!r}; defined targets: {', '.join(sorted(targets))}")
    env_overrides = {
        "lake_uri": env.get("MLHARBOR_LAKE_URI"),
        "metadata_url": env.get("MLHARBOR_METADATA_URL"),
        "catalog": env.get("MLHARBOR_CATALOG"),
        "online_store": env.get("MLHARBOR_ONLINE_STORE"),
        "tracking_uri": env.get("MLHARBOR_TRACKING_URI"),
        "artifact_root": env.get("MLHARBOR_ARTIFACT_ROOT"),
    }
    if env_overrides["metadata_url"]:
        # targets that shared the selected target's store keep sharing it: the store moved
        shared = targets[chosen].get("metadata_url")
        for t in targets.values():
            if t.get("metadata_url") == shared:
                t["metadata_url"] = env_overrides["metadata_url"]
    targets[chosen] = {**targets[chosen], **{k: v for k, v in env_overrides.items() if v}}
    _normalise_targets(targets, root, cfg_file)
    try:
        return Settings(
            project_root=root,
            home=home,
            target=chosen,
            targets={k: TargetSettings(**v) for k, v in targets.items()},
            server=ServerSettings(**raw.get("server", {})),
            policy=PolicySettings(**raw.get("policy", {})),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidArgument(f"invalid configuration in {cfg_file}: {problems}") from exc
