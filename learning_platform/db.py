"""Database helpers shared by the apps."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from django.db import connection, models
from django.utils import timezone


def _filler(field: models.Field[Any, Any], now: Any) -> Callable[[], Any]:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda: now
    return field.get_default


def fast_insert(model: type[models.Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many new rows given as {attname: value}: COPY on PostgreSQL, bulk_create elsewhere.

    No model instances are built on PostgreSQL (they cost more than the COPY itself). Missing
    columns get the field's default; auto-increment keys are left to the database. Runs in the
    caller's transaction: a failure (an IntegrityError on a unique key, say) leaves nothing behind.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows])
        return
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    plan = [(f.attname, _filler(f, now), isinstance(f, models.JSONField)) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    # wrap_database_errors turns psycopg's errors into Django's (IntegrityError on a unique key).
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            values = []
            for name, fill, is_json in plan:
                value = row[name] if name in row else fill()
                values.append(orjson.dumps(value).decode() if is_json and value is not None else value)
            copy.write_row(values)


def bulk_set(model: type[models.Model], attname: str, values: Mapping[Any, Any]) -> int:
    """Set one column of many rows to per-row values ({pk: value}) in one statement on
    PostgreSQL (unnest of two arrays), with bulk_update elsewhere."""
    if not values:
        return 0
    field = model._meta.get_field(attname.removesuffix("_id") if attname.endswith("_id") else attname)
    if connection.vendor != "postgresql":
        objs = [model(pk=pk, **{attname: value}) for pk, value in values.items()]
        return model.objects.bulk_update(objs, [field.name], batch_size=1000)
    table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(field.column)
    pk_column = connection.ops.quote_name(model._meta.pk.column)
    serial = {"bigserial": "bigint", "serial": "integer"}
    target = field.target_field if field.is_relation else field
    pk_type, value_type = (serial.get(t, t) for t in (model._meta.pk.db_type(connection), target.db_type(connection)))
    # names come from model metadata, values are parameters
    sql = (
        f"UPDATE {table} AS t SET {column} = v.value "  # noqa: S608
        f"FROM (SELECT unnest(%s::{pk_type}[]) AS pk, unnest(%s::{value_type}[]) AS value) AS v WHERE t.{pk_column} = v.pk"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(values.keys()), list(values.values())])
        return cursor.rowcount


def analyze(*tables: type[models.Model]) -> None:
    """Refresh PostgreSQL's planner statistics (after a bulk load, so that look-ups keep using
    indexes instead of scanning a table the planner still thinks is empty). No-op elsewhere."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
