"""``mlharbor.lake.sql``: SQL over lake tables by three-part names, locked down."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from mlharbor.errors import InvalidArgument, NotFound, PermissionDenied
from mlharbor.lake.duck import locked_connection
from mlharbor.lake.lineage_meta import SOURCES_KEY, sources_of, strip_sources, with_sources
from mlharbor.lake.sql import SqlEngine, filter_reader, filter_table

TABLES = {
    "dev.raw.trips": (
        pa.table({"id": [1, 2, 3, 4], "zone": [10, 20, 10, 30], "fare": [5.0, 7.5, 9.0, 1.0]}),
        7,
    ),
    "prod.ref.zones": (pa.table({"zone": [10, 20], "name": ["north", "south"]}), 2),
    "dev.ml.labels": (pa.table({"id": [1, 3], "label": [True, False]}), 0),
}


class Resolver:
    """Records calls; NotFound for unknown names, PermissionDenied for the ``secret`` schema."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, name: str) -> tuple[pads.Dataset, int]:
        with self.lock:
            self.calls.append(name)
        if ".secret." in name:
            raise PermissionDenied(f"may not read {name}")
        if name not in TABLES:
            raise NotFound(f"table {name} does not exist")
        table, version = TABLES[name]
        return pads.dataset(table), version


@pytest.fixture
def resolver() -> Resolver:
    return Resolver()


@pytest.fixture
def engine(resolver: Resolver) -> SqlEngine:
    return SqlEngine(resolver, threads=2, memory_limit="512MB")


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.csv"
    path.write_text("token\nTOPSECRET\n")
    return path


# -- queries -----------------------------------------------------------------------------------


def test_join_across_catalogs_with_aliases(engine: SqlEngine, resolver: Resolver) -> None:
    result = engine.query(
        "SELECT z.name, sum(t.fare) AS total FROM dev.raw.trips AS t "
        "JOIN prod.ref.zones z ON t.zone = z.zone GROUP BY z.name ORDER BY z.name"
    )
    assert result.table.to_pylist() == [{"name": "north", "total": 14.0}, {"name": "south", "total": 7.5}]
    assert result.sources == {"dev.raw.trips": 7, "prod.ref.zones": 2}
    assert sorted(resolver.calls) == ["dev.raw.trips", "prod.ref.zones"]


def test_sources_are_in_the_result_metadata(engine: SqlEngine) -> None:
    result = engine.query("SELECT id FROM dev.raw.trips")
    assert sources_of(result.table) == {"dev.raw.trips": 7}
    assert SOURCES_KEY in (result.table.schema.metadata or {})
    assert strip_sources(result.table).schema.metadata is None


def test_ctes_subqueries_and_set_operations(engine: SqlEngine, resolver: Resolver) -> None:
    sql = """
        WITH cheap AS (SELECT * FROM dev.raw.trips WHERE fare < 8),
             labelled AS (SELECT c.id FROM cheap c JOIN dev.ml.labels l USING (id))
        SELECT id FROM labelled
        UNION ALL
        SELECT id FROM dev.raw.trips WHERE zone IN (SELECT zone FROM prod.ref.zones WHERE name = 'south')
        ORDER BY id
    """
    result = engine.query(sql)
    assert result.table.column("id").to_pylist() == [1, 2]
    assert set(result.sources) == {"dev.raw.trips", "dev.ml.labels", "prod.ref.zones"}
    assert resolver.calls.count("dev.raw.trips") == 1  # once per distinct table


def test_names_are_case_insensitive_and_may_be_quoted(engine: SqlEngine) -> None:
    result = engine.query('SELECT count(*) AS n FROM "DEV"."Raw".TRIPS')
    assert result.table.column("n").to_pylist() == [4]
    assert result.sources == {"dev.raw.trips": 7}


def test_from_first_syntax(engine: SqlEngine) -> None:
    assert engine.query("FROM dev.raw.trips SELECT id WHERE id = 2").table.column("id").to_pylist() == [2]


def test_positional_and_named_params(engine: SqlEngine) -> None:
    q1 = engine.query("SELECT id FROM dev.raw.trips WHERE fare > ? AND zone = ? ORDER BY id", [2, 10])
    q2 = engine.query("SELECT id FROM dev.raw.trips WHERE fare > $min ORDER BY id", {"min": 7})
    q3 = engine.query("SELECT id FROM dev.raw.trips WHERE fare > $1 ORDER BY id", (8,))
    assert q1.table.column("id").to_pylist() == [1, 3]
    assert q2.table.column("id").to_pylist() == [2, 3]
    assert q3.table.column("id").to_pylist() == [3]
    with pytest.raises(InvalidArgument):
        engine.query("SELECT 1", "not params")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        engine.query("SELECT id FROM dev.raw.trips WHERE fare > ?", [])


def test_query_without_tables(engine: SqlEngine, resolver: Resolver) -> None:
    result = engine.query("SELECT 1 AS one, sum(i) AS s FROM range(4) t(i)")
    assert result.table.to_pylist() == [{"one": 1, "s": 6}]
    assert result.sources == {} and resolver.calls == []


def test_referenced_tables(engine: SqlEngine, resolver: Resolver) -> None:
    sql = "WITH x AS (SELECT * FROM prod.ref.zones) SELECT * FROM dev.raw.trips, x, dev.raw.trips t2"
    assert engine.referenced_tables(sql) == ["prod.ref.zones", "dev.raw.trips"]
    assert resolver.calls == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM trips",
        "SELECT * FROM raw.trips",
        "SELECT * FROM dev.raw.trips JOIN zones USING (zone)",
        "SELECT * FROM 'data/trips.parquet'",
        "SELECT * FROM '/etc/passwd'",
        "WITH x AS (SELECT 1) SELECT * FROM y",
    ],
)
def test_names_that_are_not_three_part_are_refused(engine: SqlEngine, resolver: Resolver, sql: str) -> None:
    with pytest.raises(InvalidArgument, match=r"catalog\.schema\.table"):
        engine.query(sql)
    assert resolver.calls == []


@pytest.mark.parametrize("sql", ["SELECT * FROM temp.main.x", "SELECT * FROM system.main.x"])
def test_reserved_catalogs_are_refused_before_resolving(engine: SqlEngine, resolver: Resolver, sql: str) -> None:
    with pytest.raises(InvalidArgument, match="reserved"):
        engine.query(sql)
    assert resolver.calls == []


def test_resolver_errors_propagate(engine: SqlEngine) -> None:
    with pytest.raises(NotFound):
        engine.query("SELECT * FROM dev.raw.missing")
    with pytest.raises(PermissionDenied):
        engine.query("SELECT * FROM prod.secret.salaries")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", "Parser Error"),
        ("SELECT nope FROM dev.raw.trips", "Binder Error"),
        ("SELECT * FROM dev.raw.trips WHERE", "syntax error"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("", "non-empty"),
    ],
)
def test_bad_sql_is_invalid_argument_with_duckdbs_message(engine: SqlEngine, sql: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        engine.query(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE dev.raw.x AS SELECT 1",
        "INSERT INTO dev.raw.trips VALUES (1, 1, 1.0)",
        "DROP TABLE dev.raw.trips",
        "COPY (SELECT 1) TO '/tmp/mlharbor-copy.csv'",
        "EXPORT DATABASE '/tmp/mlharbor-export'",
        "ATTACH '/tmp/mlharbor.duckdb' AS other",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA version",
        "CALL pragma_version()",
    ],
)
def test_only_select_statements_run(engine: SqlEngine, sql: str) -> None:
    with pytest.raises(InvalidArgument, match="only SELECT"):
        engine.query(sql)
    assert not Path("/tmp/mlharbor-copy.csv").exists()


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM read_csv('{p}')",
        "SELECT * FROM read_csv_auto('{p}')",
        "SELECT * FROM read_text('{p}')",
        "SELECT * FROM read_blob('{p}')",
        "SELECT * FROM read_json('{p}')",
        "SELECT * FROM read_parquet('{p}')",
        "SELECT * FROM glob('{d}/*')",
        "SELECT * FROM sniff_csv('{p}')",
        "SELECT * FROM parquet_metadata('{p}')",
        "SELECT (SELECT count(*) FROM read_csv('{p}')) AS n FROM dev.raw.trips",
        "SELECT * FROM dev.raw.trips WHERE id IN (SELECT 1 FROM read_text('{p}'))",
        "SELECT * FROM query('SELECT * FROM read_csv(''{p}'')')",
    ],
)
def test_external_access_fails_without_reading(engine: SqlEngine, secret_file: Path, template: str) -> None:
    sql = template.format(p=secret_file, d=secret_file.parent)
    with pytest.raises((InvalidArgument, PermissionDenied)) as info:
        engine.query(sql)
    assert "TOPSECRET" not in str(info.value)


def test_the_connection_itself_is_locked(tmp_path: Path, secret_file: Path) -> None:
    con = locked_connection(threads=1)
    out = tmp_path / "out.csv"
    for sql in (
        f"COPY (SELECT 1) TO '{out}'",
        f"ATTACH '{tmp_path / 'x.duckdb'}' AS x",
        f"SELECT * FROM read_text('{secret_file}')",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET autoload_known_extensions = true",
        "SET threads = 64",
    ):
        with pytest.raises(Exception) as info:  # DuckDB raises several classes
            con.execute(sql)
        assert "TOPSECRET" not in str(info.value)
    assert not out.exists()
    assert not (tmp_path / "x.duckdb").exists()
    con.close()


def test_python_variables_are_not_reachable(engine: SqlEngine) -> None:
    local_table = pa.table({"x": [1]})  # DuckDB's replacement scans would find this by name
    assert local_table.num_rows == 1
    with pytest.raises(InvalidArgument):
        engine.query("SELECT * FROM local_table")


def test_pooled_connections_keep_nothing_between_queries(engine: SqlEngine, resolver: Resolver) -> None:
    engine.query("SELECT * FROM dev.raw.trips JOIN prod.ref.zones USING (zone)")
    leftovers = engine.query(
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE NOT internal) AS views, "
        "(SELECT count(*) FROM duckdb_databases() WHERE NOT internal AND database_name <> 'memory') AS dbs"
    )
    assert leftovers.table.to_pylist() == [{"views": 0, "dbs": 0}]
    engine.query("SELECT * FROM dev.raw.trips")
    assert resolver.calls.count("dev.raw.trips") == 2  # resolved again: versions are never cached


def test_concurrent_queries_from_threads(engine: SqlEngine) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for _ in range(5):
                r = engine.query("SELECT count(*) AS n FROM dev.raw.trips WHERE fare > ?", [i % 3])
                results.append((i % 3, r.table.column("n")[0].as_py()))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected = {0: 4, 1: 3, 2: 3}
    assert len(results) == 40 and all(n == expected[k] for k, n in results)


def test_timeout_interrupts_a_long_query(resolver: Resolver) -> None:
    engine = SqlEngine(resolver, threads=1, timeout_s=0.2)
    with pytest.raises(InvalidArgument, match="interrupted"):
        engine.query("SELECT count(*) FROM range(100000000) a, range(100000) b WHERE a.range + b.range = -1")
    assert engine.query("SELECT 1 AS x").table.column("x").to_pylist() == [1]


def test_reads_delta_tables_from_the_store(tmp_path: Path) -> None:
    from mlharbor.lake.delta import DeltaTableStore

    store = DeltaTableStore()
    location = str(tmp_path / "trips")
    store.create(location, pa.schema([("id", pa.int64()), ("city", pa.string())]), partition_by=["city"])
    store.write(location, pa.table({"id": [1, 2, 3], "city": ["Oslo", "Rome", "Oslo"]}))

    def resolve(name: str) -> tuple[pads.Dataset, int]:
        assert name == "dev.raw.trips"
        return store.dataset(location), store.version(location)

    result = SqlEngine(resolve).query("SELECT city, count(*) n FROM dev.raw.trips GROUP BY city ORDER BY city")
    assert result.table.to_pylist() == [{"city": "Oslo", "n": 2}, {"city": "Rome", "n": 1}]
    assert result.sources == {"dev.raw.trips": 1}


# -- filters -----------------------------------------------------------------------------------

DATA = pa.table(
    {
        "id": pa.array([1, 2, 3, 4], pa.int32()),
        "city": pa.array(["Oslo", "Rome", "Oslo", None], pa.large_string()),
        "fare": [5.0, 7.5, 9.0, 1.0],
    }
)


@pytest.mark.parametrize("flt", ["fare > 6 AND city = 'Oslo'", (pc.field("fare") > 6) & (pc.field("city") == "Oslo")])
def test_filter_table_with_sql_or_expression(flt: Any) -> None:
    result = filter_table(pads.dataset(DATA), flt, ["id", "city"])
    assert result.to_pylist() == [{"id": 3, "city": "Oslo"}]
    assert result.schema == pa.schema([("id", pa.int32()), ("city", pa.large_string())])


def test_filter_table_without_filter_or_columns() -> None:
    assert filter_table(pads.dataset(DATA)).equals(DATA)
    assert filter_table(pads.dataset(DATA), None, ["fare"]).column_names == ["fare"]
    assert filter_table(pads.dataset(DATA), "city IS NULL").column("id").to_pylist() == [4]


@pytest.mark.parametrize(
    "flt",
    [
        "nope > 1",
        "fare >",
        "fare > 1) UNION ALL (SELECT 1, 'x', 1.0",
        "1; DROP TABLE x",
        "",
        "(SELECT count(*) FROM read_text('/etc/passwd')) > 0",
    ],
)
def test_bad_filters_are_refused(flt: str) -> None:
    with pytest.raises((InvalidArgument, PermissionDenied)):
        filter_table(pads.dataset(DATA), flt)


def test_filter_arguments_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="unknown columns: nope"):
        filter_table(pads.dataset(DATA), None, ["id", "nope"])
    with pytest.raises(InvalidArgument):
        filter_table(pads.dataset(DATA), None, [])
    with pytest.raises(InvalidArgument):
        filter_table(pads.dataset(DATA), 3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        filter_table(pads.dataset(DATA), pc.field("city") > 3)


@pytest.mark.parametrize("flt", ["fare > 2", pc.field("fare") > 2])
def test_filter_reader_streams_batches(flt: Any) -> None:
    big = pa.concat_tables([DATA] * 50)
    reader = filter_reader(pads.dataset(big), flt, ["id", "city"], batch_size=16)
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.schema == pa.schema([("id", pa.int32()), ("city", pa.large_string())])
    batches = list(reader)
    assert all(b.num_rows <= 16 for b in batches)
    assert sum(b.num_rows for b in batches) == 150


# -- lineage metadata --------------------------------------------------------------------------


def test_with_sources_merges_and_strip_keeps_other_metadata() -> None:
    table = pa.table({"x": [1]}).replace_schema_metadata({b"owner": b"me"})
    stamped = with_sources(with_sources(table, {"a.b.c": 1}), {"a.b.d": 2, "a.b.c": 3})
    assert sources_of(stamped) == {"a.b.c": 3, "a.b.d": 2}
    assert sources_of(stamped.schema) == {"a.b.c": 3, "a.b.d": 2}
    assert strip_sources(stamped).schema.metadata == {b"owner": b"me"}
    assert strip_sources(table) is table


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'{"a.b.c": "7", "a.b.d": true}'])
def test_malformed_sources_are_ignored(raw: bytes) -> None:
    table = pa.table({"x": [1]}).replace_schema_metadata({SOURCES_KEY: raw})
    assert sources_of(table) == {}


# -- DuckDB reading Parquet files natively -----------------------------------------------------


@pytest.fixture
def delta_tables(tmp_path: Path) -> dict[str, str]:
    from mlharbor.lake.delta import DeltaTableStore

    store = DeltaTableStore()
    plain, parted = str(tmp_path / "plain"), str(tmp_path / "parted")
    store.create(plain, pa.schema([("id", pa.int64()), ("city", pa.string())]))
    store.write(plain, pa.table({"id": [1, 2], "city": ["Oslo", "Rome"]}))
    store.write(plain, pa.table({"id": [3], "city": ["Oslo"], "fare": [2.5]}), schema_evolution=True)
    store.create(parted, pa.schema([("id", pa.int64()), ("city", pa.string())]), partition_by=["city"])
    store.write(parted, pa.table({"id": [1, 2], "city": ["Oslo", "Rome"]}))
    return {"dev.raw.plain": plain, "dev.raw.parted": parted}


def _delta_engine(delta_tables: dict[str, str], native_min_bytes: int | None) -> SqlEngine:
    from mlharbor.lake.delta import DeltaTableStore

    store = DeltaTableStore()
    return SqlEngine(
        lambda n: (store.dataset(delta_tables[n]), store.version(delta_tables[n])),
        native_min_bytes=native_min_bytes,
    )


def test_native_and_arrow_paths_agree(delta_tables: dict[str, str]) -> None:
    sql = (
        "SELECT p.id, p.city, p.fare, q.id AS qid FROM dev.raw.plain p "
        "LEFT JOIN dev.raw.parted q USING (city) ORDER BY p.id, qid"
    )
    native = _delta_engine(delta_tables, 0).query(sql)
    arrow = _delta_engine(delta_tables, None).query(sql)
    assert native.table.equals(arrow.table)
    assert native.sources == arrow.sources == {"dev.raw.plain": 2, "dev.raw.parted": 1}
    assert native.table.column("fare").to_pylist() == [None, None, 2.5]


def test_native_connection_reads_only_the_tables_files(delta_tables: dict[str, str], secret_file: Path) -> None:
    engine = _delta_engine(delta_tables, 0)
    for sql in (
        f"SELECT * FROM dev.raw.plain, read_text('{secret_file}')",
        f"SELECT * FROM dev.raw.plain, read_csv('{secret_file}')",
        f"SELECT * FROM dev.raw.plain, glob('{Path(delta_tables['dev.raw.plain'])}/*')",
    ):
        with pytest.raises((InvalidArgument, PermissionDenied)) as info:
            engine.query(sql)
        assert "TOPSECRET" not in str(info.value)
    assert engine.query("SELECT count(*) AS n FROM dev.raw.plain").table.column("n").to_pylist() == [3]


def test_which_datasets_are_read_natively(delta_tables: dict[str, str], tmp_path: Path) -> None:
    from mlharbor.lake.delta import DeltaTableStore
    from mlharbor.lake.native_scan import local_parquet_files

    store = DeltaTableStore()
    dataset = store.dataset(delta_tables["dev.raw.plain"])
    files = local_parquet_files(dataset)
    assert files is not None and len(files) == 2 and all(Path(f).is_file() for f in files)
    assert local_parquet_files(dataset.filter(pc.field("id") > 1)) is None  # a filter must be kept
    assert local_parquet_files(pads.dataset(pa.table({"x": [1]}))) is None  # in memory
    pa_csv = tmp_path / "x.csv"
    pa_csv.write_text("x\n1\n")
    assert local_parquet_files(pads.dataset(str(pa_csv), format="csv")) is None
