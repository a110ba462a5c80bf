"""Forgetting the admin's history of erased data: django_admin_log keeps each edited object's
repr (object_repr) and, for inline edits, the inline objects' reprs inside change_message, so an
erasure deletes the entries of the objects it removed and every entry quoting their text."""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable
from functools import reduce
from typing import Any

from django.db import models
from django.db.models import Q

SNIPPET = 40  # characters of a text looked for (object_repr keeps 200, most reprs quote fewer)
MIN_SNIPPET = 12  # shorter texts are too common to tell one person's from anyone's


def snippets(texts: Iterable[str]) -> list[str]:
    """The distinctive beginnings of `texts`, as the log stores them (raw, and escaped in JSON)."""
    found: set[str] = set()
    for text in texts:
        head = (text or "").strip()[:SNIPPET]
        if len(head) >= MIN_SNIPPET:
            found.update({head, json.dumps(head)[1:-1]})
    return sorted(found)


def admin_log_forget(*, objects: Iterable[tuple[type[models.Model], Iterable[Any]]] = (), texts: Iterable[str] = ()) -> int:
    """Delete the admin log entries of these objects ((model, primary keys) pairs) and those whose
    repr or change message holds one of `texts`; returns how many went."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    conditions = []
    for model, pks in objects:
        ids = [str(pk) for pk in pks]
        if ids:
            conditions.append(Q(content_type=ContentType.objects.get_for_model(model), object_id__in=ids))
    for text in snippets(texts):
        conditions += [Q(object_repr__contains=text), Q(change_message__contains=text)]
    if not conditions:
        return 0
    matching = LogEntry.objects.filter(reduce(operator.or_, conditions))
    return matching._raw_delete(matching.db)
