"""Database helpers shared by the apps."""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection, models
from django.utils import timezone


def fast_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert many new rows at once: COPY on PostgreSQL, bulk_create elsewhere.

    Callers set primary keys themselves where they need them back (UUIDs); auto-increment keys
    left empty are filled by the database. Runs inside the caller's transaction: a failure
    (an IntegrityError from a unique key, say) leaves nothing behind.
    """
    if not objs:
        return
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, models.AutoField))]
    stamped = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    for obj in objs:
        for field in stamped:
            if getattr(obj, field.attname) is None or getattr(field, "auto_now", False):
                setattr(obj, field.attname, now)
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs)
        return
    as_json = [isinstance(f, models.JSONField) for f in fields]
    attnames = [f.attname for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    # wrap_database_errors turns psycopg's errors into Django's (IntegrityError on a unique key).
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objs:
            row = [getattr(obj, name) for name in attnames]
            for i, is_json in enumerate(as_json):
                if is_json and row[i] is not None:
                    row[i] = json.dumps(row[i], ensure_ascii=False)
            copy.write_row(row)
