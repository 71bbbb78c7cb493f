"""Alembic environment of the metadata store.

:meth:`mlharbor.meta.MetadataStore.upgrade` runs the migrations programmatically and hands over
its connection (already inside the transaction that holds the migration lock) through
``config.attributes["connection"]``. Without one, a connection is made from the
``sqlalchemy.url`` option, which is how a developer can run ``alembic`` by hand.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from mlharbor.meta.models import VERSION_TABLE, Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or run migrations through MetadataStore.upgrade()")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported by mlharbor")
_main()
