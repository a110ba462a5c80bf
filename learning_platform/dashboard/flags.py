"""Small HTML pieces every admin page uses the same way (Django only; no app imports)."""

from __future__ import annotations

from collections.abc import Iterable

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

TAINTED_STYLE = "color:#fff;background:#ba2121;padding:1px 6px;border-radius:3px;font-weight:bold"


def tainted_flag(tainted: bool, reason: str = "") -> SafeString:
    """A red warning for a tainted version or dataset (never a green check); a dash otherwise."""
    if not tainted:
        return mark_safe('<span title="not tainted">-</span>')
    return format_html('<span class="tainted-flag" style="{}" title="{}">⚠ tainted</span>', TAINTED_STYLE, reason)


def tainted_warning(tainted: bool, reason: str, what: str) -> SafeString:
    """The banner at the top of a tainted object's page."""
    if not tainted:
        return mark_safe("no")
    return format_html('<p class="tainted-warning" style="{};display:inline-block;padding:6px 10px">⚠ This {} is tainted and '
                       "never serves or trains again: {}</p>", TAINTED_STYLE, what, reason)  # fmt: skip


def admin_link(obj: object | None, text: str = "") -> SafeString:
    """A link to an object's admin page (its str as text), or a dash."""
    if obj is None:
        return mark_safe("-")
    meta = obj._meta  # type: ignore[attr-defined]
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])  # type: ignore[attr-defined]
    return format_html('<a href="{}">{}</a>', url, text or str(obj))


def admin_links(objects: Iterable[object], empty: str = "none") -> SafeString:
    found = list(objects)
    if not found:
        return format_html("{}", empty)
    return format_html_join(", ", "{}", ((admin_link(o),) for o in found))


def changelist_link(app_model: str, query: str, text: str) -> SafeString:
    return format_html('<a href="{}?{}">{}</a>', reverse(f"admin:{app_model}_changelist"), query, text)
