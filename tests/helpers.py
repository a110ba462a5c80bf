from __future__ import annotations

from django.db import connection


def tables_containing(text: str, *, exclude: tuple[str, ...] = ()) -> dict[str, int]:
    """Every table (ours and Django's) with a row whose any column, cast to text, contains `text`."""
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            if table in exclude:
                continue
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
            condition = " OR ".join(f"CAST({connection.ops.quote_name(c)} AS TEXT) LIKE %s" for c in columns)
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} WHERE {condition}", [f"%{text}%"] * len(columns))  # noqa: S608
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found
