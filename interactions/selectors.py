"""Reads of the interactions app."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import django_filters
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from .models import ApiClient, Candidate, ClientContext, Feedback, Interaction, Subject
from .services import InteractionError, subject_find, subject_hash


class InteractionFilter(django_filters.FilterSet):
    task = django_filters.CharFilter()
    model_version = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    user_id = django_filters.CharFilter(method="filter_user_id", label="The client's own user id (hashed before lookup).")
    has_feedback = django_filters.BooleanFilter(method="filter_has_feedback")

    class Meta:
        model = Interaction
        fields = ["task", "model_version", "created_after", "created_before", "user_id", "has_feedback"]

    def filter_user_id(self, queryset: QuerySet[Interaction], name: str, value: str) -> QuerySet[Interaction]:
        client = self.request.auth if self.request is not None else None
        return queryset.filter(subject__user_hash=subject_hash(client=client, user_id=value))

    def filter_has_feedback(self, queryset: QuerySet[Interaction], name: str, value: bool) -> QuerySet[Interaction]:
        has = Exists(Feedback.objects.filter(interaction=OuterRef("pk")))
        return queryset.filter(has if value else ~has)


def interaction_list(*, client: ApiClient, params: dict[str, Any], request: Any = None) -> QuerySet[Interaction]:
    """A client's interactions, newest first, filtered by query parameters (400 on bad ones)."""
    queryset = Interaction.objects.filter(client=client).select_related("subject").prefetch_related("feedback__candidate", "candidates")
    filterset = InteractionFilter(params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise InteractionError("Invalid filter.", fields=dict(filterset.errors))
    return filterset.qs


def _interaction_record(interaction: Interaction) -> dict[str, Any]:
    context: ClientContext | None = getattr(interaction, "client_context", None)
    return {
        "id": interaction.pk,
        "created_at": interaction.created_at,
        "task": interaction.task,
        "session_id": interaction.session_id,
        "messages": interaction.messages,
        "input_text": interaction.input_text,
        "structured_prompt": interaction.structured_prompt,
        "output_text": interaction.output_text,
        "model_version": interaction.model_version,
        "reasoning": interaction.reasoning,
        "context_used": interaction.context_used,
        "metadata": interaction.metadata,
        "client_context": {"ip_address": context.ip_address, "user_agent": context.user_agent} if context else None,
        "candidates": [
            {"rank": c.rank, "text": c.text, "confidence": c.confidence, "is_chosen": c.is_chosen} for c in interaction.candidates.all()
        ],
        "feedback": [
            {
                "kind": f.kind,
                "source": f.source,
                "score": f.score,
                "thumb": f.thumb,
                "correction": f.correction,
                "reason": f.reason,
                "created_at": f.created_at,
            }
            for f in interaction.feedback.all()
        ],
    }


# Later apps add what they derived about a subject to its export (curation: persona, memories):
# each exporter takes the Subject and returns {section: JSON-able value}.
_exporters: list[Callable[[Subject], dict[str, Any]]] = []


def register_exporter(exporter: Callable[[Subject], dict[str, Any]]) -> None:
    if exporter not in _exporters:
        _exporters.append(exporter)


def subject_export(*, client: ApiClient, user_id: str) -> Iterator[str]:
    """Everything stored about one end user, as JSON text in chunks (GDPR access).

    The subject is looked up first so an unknown user fails before any output is produced.
    """
    subject = subject_find(client=client, user_id=user_id)
    return _export_chunks(subject)


def _export_chunks(subject: Subject) -> Iterator[str]:
    header = {
        "subject": {
            "user_hash": subject.user_hash,
            "opted_out": subject.opted_out,
            "opted_out_at": subject.opted_out_at,
            "created_at": subject.created_at,
        },
    }
    for exporter in _exporters:
        header.update(exporter(subject))
    yield json.dumps(header, cls=DjangoJSONEncoder)[:-1] + ', "interactions": ['
    rows = (
        Interaction.objects.filter(subject=subject)
        .select_related("client_context")
        .prefetch_related(Prefetch("candidates", queryset=Candidate.objects.order_by("rank")), "feedback")
        .order_by("created_at")
    )
    for index, interaction in enumerate(rows.iterator(chunk_size=500)):
        yield ("," if index else "") + json.dumps(_interaction_record(interaction), cls=DjangoJSONEncoder)
    yield "]}"
