from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

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


def dump_containing(values: Iterable[str]) -> dict[str, int]:
    """How often each value occurs in a `pg_dump` of the test database (committed data only:
    the dump reads through its own connection), for the values found at all."""
    db = connection.settings_dict
    command = ["pg_dump", "--data-only", "--no-owner", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432)]
    command += ["-U", db["USER"] or "postgres", db["NAME"]]
    environment = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    dump = subprocess.run(command, check=True, capture_output=True, env=environment).stdout.decode()
    found = {}
    for value in values:
        escaped = json.dumps(value)[1:-1]  # as a JSON string inside a text column holds it
        count = dump.count(value) + (dump.count(escaped) if escaped != value else 0)
        if count:
            found[value] = count
    return found


def files_containing(roots: Iterable[Path], values: Iterable[str]) -> dict[str, list[str]]:
    """Every file under `roots` holding one of `values` (as UTF-8 bytes or JSON-escaped)."""
    needles = {v: {v.encode(), json.dumps(v)[1:-1].encode()} for v in values}
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")) if Path(root).exists() else []:
            if path.is_file():
                data = path.read_bytes()
                hits = [v for v, forms in needles.items() if any(f in data for f in forms)]
                if hits:
                    found[str(path)] = hits
    return found
