"""Evaluating a feature spec online: the serving path of ``ws.features.lookup_online``.

Every lookup of the spec becomes one :class:`OnlineRead`; the backend answers all of them with one
round trip per online store. Looked-up columns are renamed to the spec's outputs, missing or
expired keys take the lookup's default values, columns already in the request win, and the
spec's functions then run with the pinned code (:mod:`mlharbor.features.functions`), exactly as in
training. The result has the request's columns followed by the spec's feature columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlharbor.errors import InvalidArgument

if TYPE_CHECKING:
    import pyarrow as pa

    from mlharbor.catalog.functions import FunctionBackend
    from mlharbor.features.publish import OnlineBackend
    from mlharbor.features.spec import FeatureSpec, LookupSpec


def _fill_default(column: pa.ChunkedArray | pa.Array, value: object) -> pa.ChunkedArray | pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return pc.fill_null(column, pa.scalar(value, type=column.type))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidArgument(f"default value {value!r} does not fit a {column.type} feature: {exc}") from None


def lookup_online(online: OnlineBackend, functions: FunctionBackend, spec: FeatureSpec, keys: pa.Table) -> pa.Table:
    """``keys`` with the spec's features, looked up online and computed (see the module docstring)."""
    import pyarrow as pa

    from mlharbor.features.functions import apply_functions, bind_functions
    from mlharbor.features.online import OnlineRead

    wanted: list[tuple[LookupSpec, list[str]]] = []
    for lk in spec.lookups:
        features = [f for f, out in zip(lk.features, lk.outputs, strict=True) if out not in keys.column_names]
        if not features:
            continue  # every output is supplied by the request
        missing = [c for c in lk.lookup_keys if c not in keys.column_names]
        if missing:
            raise InvalidArgument(f"the request lacks key column(s) {missing} needed to look up {lk.table}")
        wanted.append((lk, features))
    requests = [
        OnlineRead(lk.table, keys.select(lk.lookup_keys).rename_columns(lk.primary_keys), features)
        for lk, features in wanted
    ]
    results = online.read(requests) if requests else []
    frame = keys
    for (lk, features), result in zip(wanted, results, strict=True):
        outputs = dict(zip(lk.features, lk.outputs, strict=True))
        for feature in features:
            out = outputs[feature]
            column = result.column(feature)
            if out in lk.defaults:
                column = _fill_default(column, lk.defaults[out])
            frame = frame.append_column(pa.field(out, column.type), column)
    return apply_functions(frame, bind_functions(functions, spec.functions))
