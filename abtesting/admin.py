from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from learning_platform.dashboard import series
from learning_platform.dashboard.flags import admin_link, changelist_link
from learning_platform.dashboard.live import experiment_live, trials_html
from learning_platform.jobs import LIFECYCLE_FIELDS
from registry.admin import reason_action

from . import experiments
from .models import EvalCase, EvalReport, EvalRun, EvalSuite, EvaluationSettings, Experiment


class EvalCaseInline(admin.TabularInline):
    model = EvalCase
    extra = 1
    fields = ["category", "messages", "expected", "keywords", "expects_json", "weight"]


@admin.register(EvaluationSettings)
class EvaluationSettingsAdmin(admin.ModelAdmin):
    """Per task: the scorer of suites, the arena and trial verdicts; the answer budget; replay."""

    list_display = ["task", "scorer", "number_tolerance", "max_tokens", "replay_limit", "replay_days", "updated_at"]
    list_filter = ["scorer"]
    search_fields = ["task"]


@admin.register(EvalSuite)
class EvalSuiteAdmin(admin.ModelAdmin):
    list_display = ["task", "name", "case_count", "created_at"]
    list_filter = ["task"]
    inlines = [EvalCaseInline]

    @admin.display(description="cases")
    def case_count(self, obj: EvalSuite) -> int:
        return obj.cases.count()


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ["version", "suite", "status", "score", "mean_latency_ms", "created_at"]
    list_filter = ["status", "suite__task"]
    list_select_related = ["version", "suite"]
    readonly_fields = ["version", "suite", "score", "mean_latency_ms", "categories", "cases", *LIFECYCLE_FIELDS]
    exclude = ["results", "by_category"]

    @admin.display(description="Per case")
    def cases(self, obj: EvalRun) -> Any:
        prompts = {c.pk: c for c in EvalCase.objects.filter(pk__in=[r.get("id") for r in obj.results])}
        rows = [(r.get("category"), _prompt(prompts.get(r.get("id"))), _expected(prompts.get(r.get("id"))), r.get("output", ""),
                 _score(r.get("score")), r.get("latency_ms")) for r in obj.results]  # fmt: skip
        head = "<tr><th>category</th><th>case</th><th>expected</th><th>answer</th><th>score</th><th>ms</th></tr>"
        return format_html("<table>" + head + "{}</table>", format_html_join("", "<tr>" + "<td>{}</td>" * 6 + "</tr>", rows))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Per category")
    def categories(self, obj: EvalRun) -> Any:
        return format_html_join(
            "", "<div>{}: score {}, {} ms</div>", ((c, v["score"], v["latency_ms"]) for c, v in sorted(obj.by_category.items()))
        )


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "challenger", "control", "mode", "status", "recommendation", "trial_count", "win_rate", "created_at"]
    list_filter = ["task", "status", "mode", "recommendation"]
    list_select_related = ["challenger", "control"]
    readonly_fields = ["task", "control", "challenger", "status", "recommendation", "reason", "live_charts", "numbers", "related",
                       "decision", "decided_by", "arena_verdict", "started_by", "created_at", "evaluated_at", "ended_at",
                       "latest_trials"]  # fmt: skip
    fields = ["task", "control", "challenger", "status", "recommendation", "reason", "live_charts", "mode", "sample_rate", "min_trials",
              "max_trials", "max_days", "min_win_rate", "alpha", *readonly_fields[7:]]  # fmt: skip
    actions = [
        reason_action(
            "approve", "Approve the recommendation: promote the challenger", experiments.experiment_approve, argument="experiment"
        ),
        reason_action("reject", "Keep the control (reject the challenger)", experiments.experiment_reject, argument="experiment"),
        reason_action("stop", "Stop without a decision", experiments.experiment_stop, argument="experiment"),
        "evaluate_now",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started by the arena, the API or `manage.py experiment start`

    def get_readonly_fields(self, request: HttpRequest, obj: Experiment | None = None) -> list[str]:
        # the mode never changes after the start, nor a canary's share (subjects would move between
        # arms); the stopping rules and a shadow's sample rate may change while it runs
        running = obj is not None and obj.status == Experiment.Status.RUNNING
        fixed = ["mode"] + ([] if running and obj.mode == Experiment.Mode.SHADOW else ["sample_rate"])
        return [*self.readonly_fields, *fixed, *([] if running else experiments.RULES)]

    def get_form(self, request: HttpRequest, obj: Experiment | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)

        class RulesForm(form):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                data = super().clean()
                if obj is not None and all(name in data for name in experiments.RULES):
                    values = {n: data.get(n, getattr(obj, n)) for n in experiments.EDITABLE}
                    for name, messages in experiments.changes_problems(obj, values).items():
                        self.add_error(name if name in data else None, messages)
                return data

        return RulesForm

    def save_model(self, request: HttpRequest, obj: Experiment, form: Any, change: bool) -> None:
        rules = {name: form.cleaned_data[name] for name in experiments.EDITABLE if name in form.cleaned_data}
        if rules:
            experiments.experiment_update_rules(experiment=obj, actor=f"admin:{request.user.get_username()}", **rules)

    @admin.display(description="trials")
    def trial_count(self, obj: Experiment) -> int:
        return int(obj.stats.get("trials", 0))

    @admin.display(description="win rate")
    def win_rate(self, obj: Experiment) -> str:
        if not obj.stats.get("trials"):
            return "-"
        return f"{obj.stats['win_rate']:.2f} [{obj.stats['win_rate_low']:.2f}, {obj.stats['win_rate_high']:.2f}]"

    @admin.display(description="Numbers")
    def numbers(self, obj: Experiment) -> Any:
        s = obj.stats
        if not s:
            return "no trials yet"
        lines = [
            ("trials", f"{s['trials']} (won {s['wins']}, lost {s['losses']}, tied {s['ties']}; ties {s['tie_share']:.0%})"),
            ("win rate (ties excluded)", f"{s['win_rate']:.3f}, 95% interval [{s['win_rate_low']:.3f}, {s['win_rate_high']:.3f}]"),
            ("sequential p-value", f"{s['p_value']:.4g} (significant below {obj.alpha})"),
            ("verdict sources", ", ".join(f"{k}: {v}" for k, v in sorted(s.get("sources", {}).items()))),
            ("replay trials", f"{s.get('replayed', 0)} (both versions answered recent judged interactions afterwards)"),
        ]
        for side, label in (("a", "control"), ("b", "challenger")):
            g = s.get("guardrails", {}).get(side, {})
            lines.append((f"{label} guardrails", f"error rate {g.get('error_rate', 0):.1%}, p95 latency {g.get('latency_p95_ms')} ms"))
        if "sample_ratio" in s:
            r = s["sample_ratio"]
            alarm = " ALARM" if r["alarm"] else ""
            lines.append(
                (
                    "sample ratio",
                    f"{r['control_subjects']} control / {r['challenger_subjects']} challenger subjects, p = {r['p']:.3g}{alarm}",
                )
            )
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", lines))

    @admin.display(description="Win rate and p-value (live)")
    def live_charts(self, obj: Experiment) -> Any:
        live = experiment_live(obj, list(obj.trials.order_by("created_at", "id").values_list("verdict", flat=True)))
        return format_html(
            '<div data-live-experiment="{}"><p data-field="text">{}</p><div style="display:flex;flex-wrap:wrap;gap:8px">'
            '<div data-field="win_chart">{}</div><div data-field="p_chart">{}</div></div></div>'
            '<script src="{}" data-url="{}" data-seconds="3" defer></script>',
            obj.pk, live["text"], mark_safe(live["win_chart"]), mark_safe(live["p_chart"]),  # noqa: S308 (escaped SVG)
            static("dashboard/live.js"), reverse("dashboard-live"),
        )  # fmt: skip

    @admin.display(description="Related")
    def related(self, obj: Experiment) -> Any:
        rows = [
            ("challenger", admin_link(obj.challenger)), ("its training job", admin_link(obj.challenger.training_job)),
            ("its dataset", admin_link(obj.challenger.dataset)), ("control", admin_link(obj.control)),
            ("lifecycle events", changelist_link("registry_lifecycleevent", f"task={obj.task}", f"of {obj.task}")),
        ]  # fmt: skip
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="Latest trials: both answers beside the ground truth or the judge's reason")
    def latest_trials(self, obj: Experiment) -> Any:
        rendered = mark_safe(trials_html(obj))  # noqa: S308 (a template's escaped output)
        return format_html('<div data-live-experiment="{}"><div data-field="trials_html">{}</div></div>', obj.pk, rendered)

    @admin.display(description="Arena")
    def arena_verdict(self, obj: Experiment) -> Any:
        if not obj.arena:
            return "started by hand"
        pairs = [pair for pair in obj.arena.get("runs", []) if len(pair) == 2]
        runs = {r.pk: r for r in EvalRun.objects.filter(pk__in=[pk for pair in pairs for pk in pair]).select_related("suite")}
        cases = EvalCase.objects.filter(pk__in=[row.get("id") for run in runs.values() for row in run.results])
        prompts = {c.pk: c for c in cases}
        tables = [_arena_table(runs.get(mine), runs.get(theirs), prompts) for mine, theirs in pairs]
        return format_html("<p>{}</p>{}", obj.arena.get("reason", ""), format_html_join("", "{}", ((t,) for t in tables)))

    @admin.action(description="Evaluate now")
    def evaluate_now(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        for experiment in queryset:
            done = experiments.experiment_evaluate(experiment=experiment, actor=f"admin:{request.user.get_username()}")
            self.message_user(request, f"experiment {done.pk}: {done.status}, {done.recommendation}: {done.reason}")


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _prompt(case: EvalCase | None) -> str:
    return (case.messages[-1].get("content", "") if case.messages else "")[:200] if case else "(case deleted)"


def _expected(case: EvalCase | None) -> str:
    return case.expected[:200] if case else ""


def _arena_table(mine: EvalRun | None, theirs: EvalRun | None, prompts: dict[int, EvalCase]) -> Any:
    """One suite of the arena: each case with the challenger's and the champion's answer and score."""
    if mine is None or theirs is None:
        return format_html("<p>(an evaluation run of this arena was deleted)</p>")
    their_rows = {row.get("id"): row for row in theirs.results}
    rows = []
    for row in mine.results:
        case, other = prompts.get(row.get("id")), their_rows.get(row.get("id"), {})
        rows.append((row.get("category"), _prompt(case), _expected(case), row.get("output", ""), _score(row.get("score")),
                     other.get("output", ""), _score(other.get("score"))))  # fmt: skip
    head = format_html(
        "<h4>{}: {} {} vs {} {}</h4>", mine.suite, admin_link(mine, mine.version.name), _score(mine.score),
        admin_link(theirs, theirs.version.name), _score(theirs.score),
    )  # fmt: skip
    titles = "<tr><th>category</th><th>case</th><th>expected</th><th>challenger</th><th>score</th><th>champion</th><th>score</th></tr>"
    return format_html("{}<table>" + titles + "{}</table>", head, format_html_join("", "<tr>" + "<td>{}</td>" * 7 + "</tr>", rows))


@admin.register(EvalReport)
class EvalReportAdmin(admin.ModelAdmin):
    list_display = ["task", "summary", "created_at"]
    list_filter = ["task"]
    readonly_fields = ["task", "summary", "trend_charts", "trend_table", "regression_list", "created_at"]
    exclude = ["versions", "trend", "regressions"]

    @admin.display(description="Trends per suite and category")
    def trend_charts(self, obj: EvalReport) -> Any:
        charts = series.report_charts(obj.trend, obj.versions)
        return mark_safe('<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(charts) + "</div>")  # noqa: S308 (escaped SVG)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Scores per suite, oldest version first")
    def trend_table(self, obj: EvalReport) -> Any:
        rows = ((row["suite"], " → ".join(f"{s['version']}: {s['score']}" for s in row["scores"])) for row in obj.trend)
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="Regressions of the champion")
    def regression_list(self, obj: EvalReport) -> Any:
        if not obj.regressions:
            return "none"
        return format_html_join(
            "", "<div>{} / {}: {} ({}) vs {} ({})</div>",
            ((r["suite"], r["category"], r["score"], r["version"], r["previous_score"], r["previous_version"]) for r in obj.regressions),
        )  # fmt: skip
