from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from . import services
from .models import SCOPES, ApiClient, Candidate, ClientContext, ErasureRequest, Feedback, Interaction, Subject


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiClient
        fields = ["name", "scopes", "is_active"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = ["name", "key_prefix", "scopes", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    readonly_fields = ["key_prefix", "created_at"]
    actions = ["rotate_key"]

    def save_model(self, request: HttpRequest, obj: ApiClient, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            services.client_cache.clear()
            return
        client, key = services.api_client_create(name=obj.name, scopes=form.cleaned_data["scopes"])
        obj.pk, obj.key_prefix, obj.key_hash, obj.created_at = client.pk, client.key_prefix, client.key_hash, client.created_at
        obj._state.adding = False
        messages.warning(request, f"API key for {client.name} (shown once, store it now): {key}")

    @admin.action(description="Rotate the API key (the old one stops working)")
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[ApiClient]) -> None:
        for client in queryset:
            key = services.api_client_rotate_key(client=client)
            messages.warning(request, f"New API key for {client.name} (shown once): {key}")


class ErasureForm(forms.Form):
    confirm = forms.BooleanField(required=True, label="I understand this deletes the data for good")


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["user_hash", "client", "opted_out", "suppressed_interactions", "created_at"]
    list_filter = ["opted_out", "client"]
    search_fields = ["user_hash"]
    list_select_related = ["client"]
    readonly_fields = ["client", "user_hash", "opted_out_at", "suppressed_interactions", "created_at"]
    actions = ["erase"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Subject | None = None) -> bool:
        return False  # deletion goes through the erase action, which audits and tells later apps

    @admin.action(description="Erase all data of the selected subjects (GDPR)")
    def erase(self, request: HttpRequest, queryset: QuerySet[Subject]) -> HttpResponse | None:
        if "confirm_submit" in request.POST:
            form = ErasureForm(request.POST)
            if form.is_valid():
                erasures = [
                    services.subject_erase_by_subject(subject=s, requested_by=f"admin:{request.user.get_username()}") for s in queryset
                ]
                removed = sum(e.counts.get("interactions", 0) for e in erasures)
                self.message_user(request, f"Erased {len(erasures)} subject(s) and {removed} interaction(s).", messages.SUCCESS)
                return None
        else:
            form = ErasureForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase subjects",
            "subjects": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_name": "erase",
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/interactions/subject/erase_confirmation.html", context)


class FeedbackInline(admin.TabularInline):
    model = Feedback
    extra = 0
    fields = readonly_fields = ["kind", "source", "score", "thumb", "correction", "candidate", "reason", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # feedback arrives through the API (one validated path)


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0
    readonly_fields = ["rank", "text", "confidence", "is_chosen", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class HasFeedbackFilter(admin.SimpleListFilter):
    title = "has feedback"
    parameter_name = "has_feedback"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Interaction]) -> QuerySet[Interaction]:
        has = Exists(Feedback.objects.filter(interaction=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(has)
        if self.value() == "no":
            return queryset.filter(~has)
        return queryset


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "client", "model_version", "outcome", "confidence", "created_at"]
    list_filter = ["task", "created_at", HasFeedbackFilter, "model_version", "outcome", "client"]
    search_fields = ["input_text", "output_text", "session_id", "=idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = ["client"]
    raw_id_fields = ["subject"]
    readonly_fields = ["id", "client", "subject", "idempotency_key", "request_hash", "created_at", "updated_at"]
    inlines = [CandidateInline, FeedbackInline]
    show_full_result_count = False

    # A logged interaction is an audit record: it changes only through the API's doors (feedback)
    # and leaves only through the erasure service (the subject's "erase" action).
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ClientContext)
class ClientContextAdmin(admin.ModelAdmin):
    list_display = ["interaction", "ip_address", "created_at"]
    raw_id_fields = ["interaction"]
    readonly_fields = ["interaction", "ip_address", "user_agent", "created_at"]


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    list_display = ["subject_hash", "client", "requested_by", "created_at"]
    readonly_fields = ["client", "subject_hash", "requested_by", "counts", "pending", "created_at"]
    search_fields = ["subject_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the audit of an erasure outlives it
