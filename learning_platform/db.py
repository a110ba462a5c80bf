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
