"""The metadata store: catalog entries, principals, grants, tokens, audit log, lineage, settings.

SQLAlchemy 2 over SQLite (embedded, WAL) or PostgreSQL (psycopg 3), with Alembic migrations
shipped in this package. This is the only package that imports SQLAlchemy or Alembic; its
repositories take and return the records of :mod:`mlharbor.core.entities`::

    store = MetadataStore("sqlite:////var/lib/mlharbor/meta.db")
    store.upgrade()
    with store.transaction() as uow:
        uow.principals.add(principal)
        uow.grants.put(grant)
"""

from mlharbor.meta.store import MetadataStore
from mlharbor.meta.unit_of_work import UnitOfWork

__all__ = ["MetadataStore", "UnitOfWork"]
