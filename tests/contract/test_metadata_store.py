"""Conformance suite of the metadata store, run on SQLite and on PostgreSQL.

Every test gets a fresh, empty database (``metadata_url`` in tests/conftest.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mlharbor.core.entities import (
    ApiToken,
    Decision,
    Environment,
    FunctionInfo,
    Grant,
    JobRunInfo,
    LineageEdge,
    LineageNode,
    Principal,
    PrincipalKind,
    Role,
    TableInfo,
)
from mlharbor.errors import (
    AlreadyExists,
    BackendUnavailable,
    Conflict,
    InvalidArgument,
    NotFound,
)
from mlharbor.meta import MetadataStore, UnitOfWork
from mlharbor.meta.models import VERSION_TABLE, Base
from mlharbor.meta.store import alembic_config

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
HEAD = "0006"  # the newest migration


@pytest.fixture
def store(metadata_url: str) -> Iterator[MetadataStore]:
    s = MetadataStore(metadata_url)
    s.upgrade()
    yield s
    s.dispose()


@contextmanager
def raw_engine(url: str) -> Iterator[sa.Engine]:
    """A plain engine for SQL behind the repositories' back."""
    engine = sa.create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def table_info(name: str = "dev.raw.trips", **changes: Any) -> TableInfo:
    info = TableInfo(
        name=name,
        location=f"/lake/{name.replace('.', '/')}",
        owner="alice",
        comment="taxi trips",
        tags={"team": "ml"},
        partition_by=("day", "zone"),
        created_by="alice",
        created_at=T0,
        updated_at=T0,
        properties={"rows": 10, "nested": {"a": [1, 2]}},
    )
    return replace(info, **changes)


def principal(name: str = "alice", kind: PrincipalKind = PrincipalKind.USER) -> Principal:
    return Principal(name=name, kind=kind, display_name=name.title(), created_at=T0, created_by="admin")


def token(id: str, principal: str = "alice", created_at: datetime = T0, **changes: Any) -> ApiToken:
    t = ApiToken(
        id=id,
        principal=principal,
        name=f"token {id}",
        token_hash=f"hash-{id}",
        prefix=f"mlh_{id}",
        created_at=created_at,
        expires_at=created_at + timedelta(days=30),
    )
    return replace(t, **changes)


def edge(source: LineageNode, target: LineageNode, relation: str = "derived_from") -> LineageEdge:
    return LineageEdge(
        source=source, target=target, relation=relation, created_at=T0, created_by="job", details={"k": 1}
    )


# --- tables ------------------------------------------------------------------------------------


def test_table_add_get_round_trip(store: MetadataStore) -> None:
    info = table_info()
    with store.transaction() as uow:
        assert uow.tables.add(info) == info
    with store.transaction() as uow:
        got = uow.tables.get("dev.raw.trips")
        assert uow.tables.get("DEV.Raw.Trips") == got  # names are case-insensitive
    assert got == info
    assert got.created_at.tzinfo is not None and got.created_at == T0
    assert got.partition_by == ("day", "zone") and got.kind == "table"


def test_table_duplicate_and_missing(store: MetadataStore) -> None:
    with store.transaction() as uow:
        uow.tables.add(table_info())
        with pytest.raises(AlreadyExists, match=r"dev\.raw\.trips"):
            uow.tables.add(table_info(kind="feature_table"))
        # the failed insert does not poison the transaction
        uow.tables.add(table_info("dev.raw.zones"))
    with store.transaction() as uow:
        assert [t.name for t in uow.tables.list()] == ["dev.raw.trips", "dev.raw.zones"]
        with pytest.raises(NotFound, match=r"dev\.raw\.nope"):
            uow.tables.get("dev.raw.nope")
        assert uow.tables.find("dev.raw.nope") is None
        with pytest.raises(NotFound):
            uow.tables.delete("dev.raw.nope")
        with pytest.raises(NotFound):
            uow.tables.update("dev.raw.nope", owner="bob")
        with pytest.raises(InvalidArgument):
            uow.tables.get("not-a-name")


def test_table_list_filters_sorted(store: MetadataStore) -> None:
    names = ["prod.raw.b", "dev.raw.b", "dev.features.a", "dev.raw.a"]
    with store.transaction() as uow:
        for name in names:
            kind = "feature_table" if ".features." in name else "table"
            uow.tables.add(table_info(name, kind=kind))
    with store.transaction() as uow:
        assert [t.name for t in uow.tables.list()] == sorted(names)
        assert [t.name for t in uow.tables.list(catalog="dev")] == [
            "dev.features.a",
            "dev.raw.a",
            "dev.raw.b",
        ]
        assert [t.name for t in uow.tables.list(catalog="dev", schema="raw")] == ["dev.raw.a", "dev.raw.b"]
        assert [t.name for t in uow.tables.list(schema="raw")] == ["dev.raw.a", "dev.raw.b", "prod.raw.b"]
        assert [t.name for t in uow.tables.list(kind="feature_table")] == ["dev.features.a"]
        assert uow.tables.list(catalog="staging") == []


def test_table_update_only_given_fields_and_delete(store: MetadataStore) -> None:
    with store.transaction() as uow:
        uow.tables.add(table_info())
    with store.transaction() as uow:
        updated = uow.tables.update("dev.raw.trips", owner="bob", tags={"tier": "gold"})
    assert updated.owner == "bob" and updated.tags == {"tier": "gold"}
    assert updated.comment == "taxi trips" and updated.properties == table_info().properties
    assert updated.updated_at > T0 and updated.created_at == T0
    with store.transaction() as uow:
        assert uow.tables.get("dev.raw.trips") == updated
        uow.tables.update("dev.raw.trips", comment="", properties={})
        got = uow.tables.get("dev.raw.trips")
        assert (got.comment, got.properties, got.owner) == ("", {}, "bob")
        uow.tables.delete("dev.raw.trips")
    with store.transaction() as uow:
        assert uow.tables.find("dev.raw.trips") is None


def test_datetimes_are_utc_aware(store: MetadataStore) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, tzinfo=plus2)
    with store.transaction() as uow:
        uow.tables.add(table_info(created_at=local, updated_at=datetime(2024, 5, 1, 12, 0)))
    with store.transaction() as uow:
        got = uow.tables.get("dev.raw.trips")
    assert got.created_at == local and got.created_at.utcoffset() == timedelta(0)
    assert got.updated_at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # naive input is UTC


# --- principals and grants ---------------------------------------------------------------------


def test_principals(store: MetadataStore) -> None:
    with store.transaction() as uow:
        assert uow.principals.add(principal("bob")) == principal("bob")
        uow.principals.add(principal("alice"))
        uow.principals.add(principal("ci", PrincipalKind.SERVICE))
        with pytest.raises(AlreadyExists, match="bob"):
            uow.principals.add(principal("bob"))
    with store.transaction() as uow:
        assert [p.name for p in uow.principals.list()] == ["alice", "bob", "ci"]
        assert [p.name for p in uow.principals.list(kind=PrincipalKind.SERVICE)] == ["ci"]
        assert uow.principals.get("ci").kind is PrincipalKind.SERVICE
        assert uow.principals.find("nobody") is None
        with pytest.raises(NotFound, match="nobody"):
            uow.principals.get("nobody")
        with pytest.raises(NotFound):
            uow.principals.set_active("nobody", False)
        assert uow.principals.set_active("bob", False).active is False
    with store.transaction() as uow:
        assert uow.principals.get("bob").active is False
        assert uow.principals.set_active("bob", True).active is True


def test_grants_upsert_list_delete(store: MetadataStore) -> None:
    def grant(who: str, env: Environment, role: Role, by: str = "admin") -> Grant:
        return Grant(principal=who, environment=env, role=role, granted_by=by, granted_at=T0)

    with store.transaction() as uow:
        uow.principals.add(principal("alice"))
        uow.principals.add(principal("bob"))
        assert uow.grants.get("alice", Environment.DEV) is None
        uow.grants.put(grant("alice", Environment.DEV, Role.DATA_SCIENTIST))
        uow.grants.put(grant("alice", Environment.PROD, Role.VIEWER))
        uow.grants.put(grant("bob", Environment.DEV, Role.VIEWER))
        assert uow.grants.get("alice", Environment.DEV) == grant(
            "alice", Environment.DEV, Role.DATA_SCIENTIST
        )
        # upsert: one role per (principal, environment)
        newer = grant("alice", Environment.DEV, Role.ML_ENGINEER, by="root")
        assert uow.grants.put(newer) == newer
        assert uow.grants.get("alice", "dev") == newer
    with store.transaction() as uow:
        assert uow.grants.get("alice", Environment.DEV) == newer
        assert len(uow.grants.list()) == 3
        assert [(g.principal, g.environment) for g in uow.grants.list(principal="alice")] == [
            ("alice", Environment.DEV),
            ("alice", Environment.PROD),
        ]
        assert [g.principal for g in uow.grants.list(environment=Environment.DEV)] == ["alice", "bob"]
        uow.grants.delete("alice", Environment.PROD)
        with pytest.raises(NotFound):
            uow.grants.delete("alice", Environment.PROD)
        with pytest.raises(NotFound, match="ghost"):
            uow.grants.put(grant("ghost", Environment.DEV, Role.ADMIN))
    with store.transaction() as uow:
        assert uow.grants.get("alice", Environment.PROD) is None


def test_invalid_enum_values_are_invalid_arguments(store: MetadataStore) -> None:
    with store.transaction() as uow:
        uow.principals.add(principal("alice"))
        with pytest.raises(InvalidArgument, match="dev, staging, prod"):
            uow.grants.get("alice", "qa")
        with pytest.raises(InvalidArgument, match="viewer"):
            uow.grants.put(
                Grant(
                    principal="alice", environment=Environment.DEV, role="boss", granted_by="x", granted_at=T0
                )  # type: ignore[arg-type]
            )
        with pytest.raises(InvalidArgument):
            uow.principals.list(kind="robot")
        with pytest.raises(InvalidArgument):
            uow.audit.list(decision="maybe")


def test_grants_foreign_key_enforced_in_database(store: MetadataStore) -> None:
    with raw_engine(store.url) as engine, engine.connect() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys = ON")
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    "INSERT INTO role_grants (principal, environment, role, granted_by, granted_at) "
                    "VALUES ('ghost', 'dev', 'admin', 'x', :t)"
                ),
                {"t": T0},
            )


# --- tokens ------------------------------------------------------------------------------------


def test_tokens(store: MetadataStore) -> None:
    with store.transaction() as uow:
        uow.principals.add(principal("alice"))
        uow.principals.add(principal("bob"))
        assert uow.tokens.add(token("t1")) == token("t1")
        uow.tokens.add(token("t2", created_at=T0 + timedelta(hours=1)))
        uow.tokens.add(token("t3", principal="bob", created_at=T0 + timedelta(hours=2), expires_at=None))
        with pytest.raises(AlreadyExists):
            uow.tokens.add(token("t1", token_hash="other"))
        with pytest.raises(AlreadyExists):
            uow.tokens.add(token("t9", token_hash="hash-t1"))
        with pytest.raises(NotFound, match="ghost"):
            uow.tokens.add(token("t8", principal="ghost"))
    with store.transaction() as uow:
        assert uow.tokens.get("t3").expires_at is None
        with pytest.raises(NotFound, match="nope"):
            uow.tokens.get("nope")
        assert uow.tokens.find_by_hash("hash-t2") == token("t2", created_at=T0 + timedelta(hours=1))
        assert uow.tokens.find_by_hash("unknown") is None
        assert [t.id for t in uow.tokens.list()] == ["t3", "t2", "t1"]
        assert [t.id for t in uow.tokens.list(principal="alice")] == ["t2", "t1"]


def test_token_revoke_is_idempotent_and_touch(store: MetadataStore) -> None:
    with store.transaction() as uow:
        uow.principals.add(principal("alice"))
        uow.tokens.add(token("t1"))
    first, later = T0 + timedelta(days=1), T0 + timedelta(days=2)
    with store.transaction() as uow:
        revoked = uow.tokens.revoke("t1", first)
        assert revoked.revoked_at == first and not revoked.is_valid_at(later)
        assert uow.tokens.revoke("t1", later).revoked_at == first
    with store.transaction() as uow:
        assert uow.tokens.revoke("t1", later).revoked_at == first
        assert uow.tokens.find_by_hash("hash-t1") == revoked
        with pytest.raises(NotFound):
            uow.tokens.revoke("nope", first)
        uow.tokens.touch("t1", later)
        uow.tokens.touch("t1", first)  # older touch does not move it back
        assert uow.tokens.get("t1").last_used_at == later
        with pytest.raises(NotFound):
            uow.tokens.touch("nope", first)


# --- audit -------------------------------------------------------------------------------------


def append_audit(uow: UnitOfWork, i: int, **changes: Any) -> int:
    fields: dict[str, Any] = {
        "time": T0 + timedelta(minutes=i),
        "actor": "alice" if i % 2 else "bob",
        "action": "tables.create" if i % 3 else "tables.delete",
        "resource": f"dev.raw.t{i % 4}",
        "decision": Decision.DENIED if i % 5 == 0 else Decision.ALLOWED,
        "request_id": f"req-{i}",
        "details": {"i": i, "nested": {"ok": True}},
    }
    fields.update(changes)
    return uow.audit.append(**fields).id


def test_audit_append_and_list(store: MetadataStore) -> None:
    with store.transaction() as uow:
        ids = [append_audit(uow, i) for i in range(1, 21)]
    assert ids == sorted(ids) and len(set(ids)) == 20
    with store.transaction() as uow:
        entries = uow.audit.list()
        assert [e.id for e in entries] == ids[::-1]  # newest first
        newest = entries[0]
        assert newest.time == T0 + timedelta(minutes=20) and newest.decision is Decision.DENIED
        assert newest.details == {"i": 20, "nested": {"ok": True}} and newest.request_id == "req-20"
        assert all(e.actor == "alice" for e in uow.audit.list(actor="alice"))
        assert len(uow.audit.list(actor="alice")) == 10
        assert [e.id for e in uow.audit.list(action="tables.delete")] == [
            ids[i - 1] for i in (18, 15, 12, 9, 6, 3)
        ]
        assert {e.details["i"] for e in uow.audit.list(resource="dev.raw.t1")} == {1, 5, 9, 13, 17}
        assert {e.details["i"] for e in uow.audit.list(decision=Decision.DENIED)} == {5, 10, 15, 20}
        assert {e.details["i"] for e in uow.audit.list(decision="denied", actor="bob")} == {10, 20}
        since = uow.audit.list(since=T0 + timedelta(minutes=18))
        assert [e.details["i"] for e in since] == [20, 19, 18]


def test_audit_pagination(store: MetadataStore) -> None:
    with store.transaction() as uow:
        ids = [append_audit(uow, i) for i in range(1, 26)]
    pages: list[list[int]] = []
    with store.transaction() as uow:
        before: int | None = None
        while True:
            page = uow.audit.list(limit=10, before_id=before)
            if not page:
                break
            pages.append([e.id for e in page])
            before = page[-1].id
        with pytest.raises(InvalidArgument):
            uow.audit.list(limit=0)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [i for p in pages for i in p] == ids[::-1]


def test_audit_log_is_append_only_in_the_database(store: MetadataStore) -> None:
    with store.transaction() as uow:
        append_audit(uow, 1)
    statements = ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
    if store.dialect == "postgresql":
        statements.append("TRUNCATE audit_log")
    with raw_engine(store.url) as engine:
        for statement in statements:
            with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="append-only"):
                conn.execute(sa.text(statement))
    with store.transaction() as uow:
        [entry] = uow.audit.list()
    assert entry.actor == "alice"


# --- lineage -----------------------------------------------------------------------------------

RAW = LineageNode("table", "dev.raw.trips", "3")
RAW_OLD = LineageNode("table", "dev.raw.trips", "2")
ZONES = LineageNode("table", "dev.raw.zones", "1")
FEATURES = LineageNode("feature_table", "dev.features.trip_stats", "7")
RUN = LineageNode("run", "abc123")
MODEL = LineageNode("model", "dev.models.eta", "1")
ENDPOINT = LineageNode("endpoint", "eta")


@pytest.fixture
def lineage_store(store: MetadataStore) -> MetadataStore:
    with store.transaction() as uow:
        for e in [
            edge(RAW, FEATURES),
            edge(ZONES, FEATURES),
            edge(FEATURES, RUN, "trained_on"),
            edge(RUN, MODEL, "logged"),
            edge(MODEL, ENDPOINT, "serves"),
            edge(RAW_OLD, LineageNode("table", "dev.raw.old_copy")),
        ]:
            uow.lineage.add(e)
    return store


def test_lineage_dedup(lineage_store: MetadataStore) -> None:
    with lineage_store.transaction() as uow:
        uow.lineage.add(edge(RAW, FEATURES))
        uow.lineage.add(replace(edge(RAW, FEATURES), created_by="other", details={}))
        uow.lineage.add(edge(RUN, MODEL, "logged"))
    with lineage_store.transaction() as uow:
        uow.lineage.add(edge(RAW, FEATURES))
        assert len(uow.lineage.edges("dev.features.trip_stats")) == 3
        assert uow.lineage.upstream(FEATURES)[0] == edge(RAW, FEATURES)  # first one kept
        # a different relation is a different edge
        uow.lineage.add(edge(RAW, FEATURES, "joined"))
        assert len(uow.lineage.edges("dev.features.trip_stats")) == 4


def test_lineage_upstream_downstream(lineage_store: MetadataStore) -> None:
    with lineage_store.transaction() as uow:
        assert uow.lineage.upstream(MODEL) == [edge(RUN, MODEL, "logged")]
        assert uow.lineage.upstream(MODEL, depth=2) == [
            edge(RUN, MODEL, "logged"),
            edge(FEATURES, RUN, "trained_on"),
        ]
        assert uow.lineage.upstream(MODEL, depth=3) == [
            edge(RUN, MODEL, "logged"),
            edge(FEATURES, RUN, "trained_on"),
            edge(RAW, FEATURES),
            edge(ZONES, FEATURES),
        ]
        assert uow.lineage.downstream(RAW) == [edge(RAW, FEATURES)]
        assert uow.lineage.downstream(RAW, depth=2) == [
            edge(RAW, FEATURES),
            edge(FEATURES, RUN, "trained_on"),
        ]
        assert len(uow.lineage.downstream(RAW, depth=10)) == 4  # stops at the end of the graph
        assert uow.lineage.downstream(ENDPOINT) == []
        with pytest.raises(InvalidArgument):
            uow.lineage.upstream(MODEL, depth=0)


def test_lineage_versionless_node_matches_every_version(lineage_store: MetadataStore) -> None:
    any_raw = LineageNode("table", "dev.raw.trips")
    with lineage_store.transaction() as uow:
        assert [e.target.name for e in uow.lineage.downstream(any_raw)] == [
            "dev.features.trip_stats",
            "dev.raw.old_copy",
        ]
        assert [e.target.name for e in uow.lineage.downstream(RAW_OLD)] == ["dev.raw.old_copy"]
        # a stored edge without versions comes back with version None
        assert uow.lineage.upstream(RUN)[0].target.version is None
        assert uow.lineage.downstream(LineageNode("table", "dev.raw.trips", "99")) == []
        names = [(e.source.name, e.target.name) for e in uow.lineage.edges("dev.raw.trips")]
        assert names == [("dev.raw.trips", "dev.features.trip_stats"), ("dev.raw.trips", "dev.raw.old_copy")]


def test_lineage_walk_terminates_on_cycles(store: MetadataStore) -> None:
    a, b = LineageNode("table", "a"), LineageNode("table", "b")
    with store.transaction() as uow:
        uow.lineage.add(edge(a, b))
        uow.lineage.add(edge(b, a))
        assert uow.lineage.downstream(a, depth=50) == [edge(a, b), edge(b, a)]


# --- key-values --------------------------------------------------------------------------------


def test_kv(store: MetadataStore) -> None:
    with store.transaction() as uow:
        assert uow.kv.get("k") is None
        assert uow.kv.set_if_absent("k", "first") is True
        assert uow.kv.set_if_absent("k", "second") is False
        assert uow.kv.get("k") == "first"
        uow.kv.set("k", "third")
        uow.kv.set("other", "x" * 10_000)
    with store.transaction() as uow:
        assert uow.kv.get("k") == "third"
        assert uow.kv.get("other") == "x" * 10_000


def test_kv_set_if_absent_race(metadata_url: str) -> None:
    stores = [MetadataStore(metadata_url) for _ in range(2)]
    stores[0].upgrade()
    barrier = threading.Barrier(8)

    def claim(i: int) -> bool:
        barrier.wait()
        with stores[i % 2].transaction() as uow:
            return uow.kv.set_if_absent("leader", f"worker-{i}")

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(claim, range(8)))
        assert results.count(True) == 1
        with stores[1].transaction() as uow:
            assert uow.kv.get("leader") == f"worker-{results.index(True)}"
    finally:
        for s in stores:
            s.dispose()


# --- transactions ------------------------------------------------------------------------------


def test_rollback_on_exception_leaves_nothing(store: MetadataStore) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), store.transaction() as uow:
        uow.principals.add(principal("alice"))
        uow.tables.add(table_info())
        uow.audit.append(
            time=T0, actor="a", action="x", resource="r", decision=Decision.ALLOWED, request_id="", details={}
        )
        uow.lineage.add(edge(RAW, FEATURES))
        uow.kv.set("k", "v")
        raise Boom
    with store.transaction() as uow:
        assert uow.principals.list() == [] and uow.tables.list() == [] and uow.audit.list() == []
        assert uow.lineage.edges("dev.raw.trips") == [] and uow.kv.get("k") is None


def test_commit_is_visible_to_another_store(store: MetadataStore) -> None:
    other = MetadataStore(store.url)
    try:
        with store.transaction() as uow:
            uow.kv.set("k", "v")
        with other.transaction() as uow:
            assert uow.kv.get("k") == "v"
    finally:
        other.dispose()


def test_uncaught_integrity_error_becomes_already_exists(store: MetadataStore) -> None:
    with store.transaction() as uow:
        uow.principals.add(principal("alice"))
        uow.tokens.add(token("t1"))
    # two transactions racing on the same token id: the later one fails at commit or flush
    with pytest.raises(AlreadyExists), store.transaction() as uow:
        uow.tables.add(table_info())
        uow.tokens.add(token("t1", token_hash="x"))
    with store.transaction() as uow:
        assert uow.tables.list() == []


# --- migrations --------------------------------------------------------------------------------


def current_revision(url: str) -> str | None:
    with raw_engine(url) as engine, engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def test_upgrade_is_idempotent(metadata_url: str) -> None:
    s = MetadataStore(metadata_url)
    try:
        assert current_revision(metadata_url) is None
        s.upgrade()
        assert current_revision(metadata_url) == HEAD
        with s.transaction() as uow:
            uow.kv.set("k", "v")
        s.upgrade()
        s.upgrade()
        with s.transaction() as uow:
            assert uow.kv.get("k") == "v"
    finally:
        s.dispose()


def test_concurrent_upgrade_threads(metadata_url: str) -> None:
    stores = [MetadataStore(metadata_url) for _ in range(4)]
    barrier = threading.Barrier(4)

    def run(s: MetadataStore) -> None:
        barrier.wait()
        s.upgrade()

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(run, stores))
        assert current_revision(metadata_url) == HEAD
    finally:
        for s in stores:
            s.dispose()


def test_concurrent_upgrade_processes(metadata_url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from mlharbor.meta import MetadataStore\n"
        "s = MetadataStore(sys.argv[1])\n"
        "while not os.path.exists(sys.argv[2]): time.sleep(0.01)\n"
        "s.upgrade()\n"
        "with s.transaction() as uow: uow.kv.set_if_absent('first', str(os.getpid()))\n"
        "s.dispose()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, metadata_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert current_revision(metadata_url) == HEAD


@pytest.mark.parametrize("check", ["models", "triggers"])
def test_migrated_schema_matches_models(store: MetadataStore, check: str) -> None:
    with raw_engine(store.url) as engine, engine.connect() as conn:
        if check == "models":
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            assert compare_metadata(context, Base.metadata) == []
            return
        if store.dialect == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
        assert len(conn.execute(sa.text(query)).all()) >= 2


def test_downgrade_to_base_and_upgrade_again(store: MetadataStore) -> None:
    config = alembic_config()
    with raw_engine(store.url) as engine:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(sa.inspect(engine).get_table_names()) == {VERSION_TABLE}
    assert current_revision(store.url) is None
    store.upgrade()
    with store.transaction() as uow:
        uow.audit.append(
            time=T0, actor="a", action="x", resource="r", decision=Decision.ALLOWED, request_id="", details={}
        )
    assert current_revision(store.url) == HEAD


def test_upgrade_refuses_a_newer_schema(store: MetadataStore) -> None:
    with raw_engine(store.url) as engine, engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    with pytest.raises(Conflict, match="9999"):
        store.upgrade()


# --- connection set-up and failures -------------------------------------------------------------


def test_sqlite_settings(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "meta.db"
    s = MetadataStore(f"sqlite:///{path}")
    try:
        assert s.dialect == "sqlite"
        s.upgrade()
        assert path.exists()
        with s._engine.connect() as conn:  # white-box: the pragmas of every pooled connection
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        s.dispose()


def test_in_memory_sqlite() -> None:
    s = MetadataStore("sqlite://")
    try:
        s.upgrade()
        with s.transaction() as uow:
            uow.kv.set("k", "v")
        with s.transaction() as uow:
            assert uow.kv.get("k") == "v"
    finally:
        s.dispose()


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/db", "not a url", "redis://localhost"],
)
def test_unsupported_url(url: str) -> None:
    with pytest.raises(InvalidArgument):
        MetadataStore(url)


@pytest.mark.parametrize("operation", ["upgrade", "transaction"])
def test_unreachable_postgresql(operation: str) -> None:
    s = MetadataStore("postgresql://postgres:s3cret@127.0.0.1:1/mlh")
    assert s.dialect == "postgresql" and s.url.startswith("postgresql+psycopg://")
    call: Callable[[], object] = s.upgrade if operation == "upgrade" else lambda: s.transaction().__enter__()
    try:
        with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1") as info:
            call()
        assert "s3cret" not in str(info.value) and "***" in str(info.value)
    finally:
        s.dispose()


# --- functions ---------------------------------------------------------------------------------


FN_TIME = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _function(name: str, source: str = "def f(x):\n    return x\n") -> FunctionInfo:
    return FunctionInfo(name=name, version=0, entry_point="f", source=source, sha256="ab" * 32, parameters=("x",),
                        return_type="double", description="d", created_by="alice", created_at=FN_TIME)


def test_functions_are_versioned_per_name(store: MetadataStore) -> None:
    with store.transaction() as uow:
        assert uow.functions.add(_function("dev.features.f")).version == 1
        assert uow.functions.add(_function("DEV.features.f", "def f(x):\n    return 2 * x\n")).version == 2
        uow.functions.add(_function("prod.features.g"))
    with store.transaction() as uow:
        latest = uow.functions.find("dev.features.f")
        assert latest is not None and latest.version == 2 and "2 * x" in latest.source
        first = uow.functions.find("dev.features.f", 1)
        assert first is not None and first.parameters == ("x",) and first.created_at == FN_TIME
        assert uow.functions.find("dev.features.f", 3) is None and uow.functions.find("dev.features.nope") is None
        assert [(f.name, f.version) for f in uow.functions.list()] == [("dev.features.f", 2), ("prod.features.g", 1)]
        assert [f.name for f in uow.functions.list(catalog="prod")] == ["prod.features.g"]
        assert [f.version for f in uow.functions.versions("dev.features.f")] == [1, 2]
        assert uow.functions.remove("dev.features.f") == 2
        assert uow.functions.find("dev.features.f") is None


# --- job runs --------------------------------------------------------------------------------------


def test_task_updates_apply_in_order_without_reading_back(store: MetadataStore) -> None:
    run = JobRunInfo("run1", "job", "running", {"name": "job"}, {}, "manual", "alice", T0)
    with store.transaction() as uow:
        uow.jobs.add_run(run, ["a", "b"])
    with store.transaction() as uow:
        uow.jobs.update_tasks("run1", [
            ("a", {"state": "running", "attempts": 1, "started_at": T0}),
            ("b", {"state": "pending", "error": "attempt 1: boom", "log_paths": ["/l/b.out"]}),
            ("a", {"state": "succeeded", "values": {"rows": 3}, "ended_at": T0 + timedelta(seconds=1)}),
        ])
    with store.transaction() as uow:
        tasks = {t.task_key: t for t in uow.jobs.task_runs("run1")}
    assert (tasks["a"].state, tasks["a"].attempts, tasks["a"].values) == ("succeeded", 1, {"rows": 3})
    assert tasks["a"].started_at == T0 and tasks["a"].ended_at == T0 + timedelta(seconds=1)
    assert (tasks["b"].state, tasks["b"].error, tasks["b"].log_paths) == ("pending", "attempt 1: boom", ("/l/b.out",))
    with pytest.raises(NotFound, match="no task c"), store.transaction() as uow:
        uow.jobs.update_tasks("run1", [("a", {"state": "failed"}), ("c", {"state": "running"})])
    with store.transaction() as uow:  # the failed transaction changed nothing
        assert {t.task_key: t.state for t in uow.jobs.task_runs("run1")} == {"a": "succeeded", "b": "pending"}
