"""Online experiments: a challenger against the task's champion (the control) on live traffic.

- shadow: users see the control; for a sample of its requests (EXPERIMENT_SAMPLE_RATE, decided by
  a hash of the interaction id) a django-q2 task asks the challenger the same messages afterwards.
- canary: a sticky share of subjects (a hash of the experiment and the subject) sees the
  challenger; a django-q2 task asks the control the same messages afterwards. Requests without a
  user id always get the control (nothing to stick to).

The request path only decides and enqueues; every second answer runs on the task queue. Each trial
gets a verdict (A control, B challenger, tie) from the best source available: ground truth (a
correction, or metadata["expected"] on the interaction), user feedback (canary: the rating of a
challenger answer against the rating of a control answer, paired in order), a judge model
(JUDGE_MODEL), or heuristic scorers. After every trial, and hourly, the experiment is evaluated:
statistics.recommend (sequential test, win rate, minimum trials), the sample-ratio check for
canaries, and the stopping rules.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from interactions.models import Feedback, Interaction
from interactions.services import subject_hash
from learning_platform.errors import DomainError
from registry import serving
from registry.models import LifecycleEvent, ModelVersion, PromotionPolicy
from registry.services import RegistryError, event_record, version_approve, version_promote, version_reject
from registry.serving.service import answer
from registry.stats import percentile

from . import scorers, statistics, verdicts
from .models import Experiment, Trial

logger = logging.getLogger(__name__)
E, T, A = Experiment, Trial, LifecycleEvent.Action
OPEN = (E.Status.RUNNING, E.Status.AWAITING_APPROVAL)
HEURISTIC_WEIGHTS = {"no_placeholders": 1.0, "no_error_text": 1.0, "formatting": 1.0}
SRM_ALPHA = 0.001
SRM_MIN_SUBJECTS = 20
TIE_WITHIN = 0.01


class ExperimentError(DomainError):
    """An experiment request refused; nothing changed."""


# --- Starting --------------------------------------------------------------------------------


def experiment_start(
    *,
    challenger: ModelVersion,
    actor: str,
    control: ModelVersion | None = None,
    mode: str | None = None,
    sample_rate: float | None = None,
    arena: dict[str, Any] | None = None,
    **rules: Any,
) -> Experiment:
    """Start an experiment of `challenger` against the task's champion; stopping rules default to
    the EXPERIMENT_* settings."""
    control = control or serving.champion(challenger.task)
    problems = {}
    if challenger.tainted:
        problems["challenger"] = [f"{challenger.name} is tainted: {challenger.tainted_reason}"]
    elif challenger.status not in (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED):
        problems["challenger"] = [f"{challenger.name} is {challenger.status}; only a candidate or approved version can be tried."]
    elif challenger.pk == control.pk or challenger.task != control.task:
        problems["challenger"] = [f"{challenger.name} is not another version of {control.task!r}'s champion {control.name}."]
    mode = mode or settings.EXPERIMENT_MODE
    if mode not in E.Mode.values:
        problems["mode"] = [f"Expected one of {', '.join(E.Mode.values)}."]
    rate = settings.EXPERIMENT_SAMPLE_RATE if sample_rate is None else sample_rate
    if not 0 < rate <= 1:
        problems["sample_rate"] = ["A share above 0 and at most 1."]
    elif mode == E.Mode.CANARY and rate >= 1:
        problems["sample_rate"] = ["A canary needs a control share: below 1."]
    if problems:
        raise ExperimentError("The experiment cannot start.", fields=problems)
    values = {
        "min_trials": settings.EXPERIMENT_MIN_TRIALS,
        "max_trials": settings.EXPERIMENT_MAX_TRIALS,
        "max_days": settings.EXPERIMENT_MAX_DAYS,
        "min_win_rate": settings.EXPERIMENT_MIN_WIN_RATE,
        "alpha": settings.EXPERIMENT_ALPHA,
    }
    values.update({k: v for k, v in rules.items() if v is not None})
    problems.update(rules_problems(values))
    if problems:
        raise ExperimentError("The experiment cannot start.", fields=problems)
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                task=challenger.task, control=control, challenger=challenger, mode=mode, sample_rate=rate, started_by=actor,
                arena=arena or {}, **values,
            )  # fmt: skip
            event_record(
                task=challenger.task, action=A.AB_TEST_STARTED, actor=actor, from_version=control, to_version=challenger,
                reason=f"{mode} experiment {experiment.pk}: {challenger.name} against {control.name}, sample rate {rate:.0%}",
            )  # fmt: skip
    except IntegrityError:
        running_one = Experiment.objects.filter(task=challenger.task, status__in=OPEN).first()
        raise ExperimentError(f"Task {challenger.task!r} already has an open experiment ({running_one}).", code="conflict") from None
    forget_cache(challenger.task)
    replay_enqueue(experiment_id=experiment.pk)
    return experiment


def replay_enqueue(*, experiment_id: int) -> None:
    """After the commit, the task queue replays recent corrected interactions (abtesting/replay.py)."""
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("abtesting.tasks.run_replay", experiment_id, q_options={"group": "trials"}), robust=True)


def rules_problems(values: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with a set of stopping rules (empty when they are fine)."""
    problems = {}
    if not 0.5 < values["min_win_rate"] <= 1:
        problems["min_win_rate"] = ["Above 0.5 (the challenger must win more than it loses) and at most 1."]
    if not 0 < values["alpha"] <= 0.5:
        problems["alpha"] = ["Above 0 and at most 0.5."]
    if values["min_trials"] < 1:
        problems["min_trials"] = ["At least 1."]
    if values["max_trials"] < values["min_trials"]:
        problems["max_trials"] = [f"At least min_trials ({values['min_trials']})."]
    if values["max_days"] < 1:
        problems["max_days"] = ["At least 1."]
    return problems


# --- The request path: decide and enqueue, nothing more -------------------------------------

_cache: dict[str, tuple[float, Experiment | None]] = {}


def forget_cache(task: str) -> None:
    """Forget the task's experiment in this process now and again after the commit (other
    processes notice within EXPERIMENT_CACHE_SECONDS)."""
    _cache.pop(task, None)
    transaction.on_commit(lambda: _cache.pop(task, None))


def running(task: str) -> Experiment | None:
    """The task's running experiment, cached per process for EXPERIMENT_CACHE_SECONDS."""
    now = time.monotonic()
    hit = _cache.get(task)
    if hit is not None and hit[0] > now:
        return hit[1]
    experiment = Experiment.objects.select_related("control", "challenger").filter(task=task, status=E.Status.RUNNING).first()
    if settings.EXPERIMENT_CACHE_SECONDS:
        _cache[task] = (now + settings.EXPERIMENT_CACHE_SECONDS, experiment)
    return experiment


def bucket(*parts: object) -> float:
    """A stable number in [0, 1) from the parts (the same parts always land in the same place)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def canary_version(*, task: str, client: Any, user_id: str | None) -> ModelVersion | None:
    """The challenger when a running canary puts this subject in its share; else None."""
    if not user_id or client is None:
        return None
    experiment = running(task)
    if experiment is None or experiment.mode != E.Mode.CANARY:
        return None
    if not servable(experiment.challenger):
        return None
    subject = subject_hash(client=client, user_id=user_id)
    return experiment.challenger if bucket(experiment.pk, subject) < experiment.sample_rate else None


def servable(version: ModelVersion) -> bool:
    """May this challenger still answer users? (Not once tainted, rejected, retired.)"""
    return not version.tainted and version.status in (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED)


def on_served(*, task: str, version: ModelVersion, interaction_id: str | None, max_tokens: int, temperature: float = 0.0) -> bool:
    """After a request was answered and logged: enqueue the trial when it is sampled. The other
    side's answer is generated by the task queue, never here."""
    if interaction_id is None:
        return False
    experiment = running(task)
    if experiment is None:
        return False
    if experiment.mode == E.Mode.SHADOW:
        sampled = version.pk == experiment.control_id and bucket(experiment.pk, interaction_id) < experiment.sample_rate
    else:
        sampled = version.pk == experiment.challenger_id
    if sampled:
        from django_q.tasks import async_task

        experiment_id = experiment.pk
        transaction.on_commit(
            lambda: async_task(
                "abtesting.tasks.run_trial", experiment_id, interaction_id, max_tokens, temperature, q_options={"group": "trials"}
            ),
            robust=True,
        )
    return sampled


# --- Trials (on the task queue) -------------------------------------------------------------


def messages_of(interaction: Interaction) -> list[dict[str, str]]:
    return interaction.messages or [{"role": "user", "content": interaction.input_text}]


def ground_truth(interaction: Interaction) -> str:
    correction = Feedback.objects.filter(interaction=interaction, kind=Feedback.Kind.CORRECTION).order_by("-created_at").first()
    if correction is not None:
        return correction.correction
    expected = (interaction.metadata or {}).get("expected")
    return expected if isinstance(expected, str) else ""


def _compare(score_a: float, score_b: float) -> str:
    if abs(score_a - score_b) <= TIE_WITHIN:
        return T.Verdict.TIE
    return T.Verdict.B if score_b > score_a else T.Verdict.A


def _by_reference(a: str, b: str, truth: str, *, task: str) -> tuple[str, str, dict[str, Any]]:
    """Both answers scored against the truth with the task's scorer; a wrong answer never wins
    (abtesting/verdicts.py)."""
    verdict, detail = verdicts.ground_truth_verdict(a, b, truth, config=verdicts.task_settings(task))
    return verdict, T.Source.GROUND_TRUTH, detail


def truth_fields(source: str, detail: dict[str, Any], truth: str) -> dict[str, Any]:
    """What a trial stores beside its answers: the ground truth and both scores against it."""
    if source != T.Source.GROUND_TRUTH:
        return {"ground_truth": "", "score_a": None, "score_b": None}
    return {"ground_truth": truth, "score_a": detail.get("score_a"), "score_b": detail.get("score_b")}


def _by_heuristics(a: str, b: str) -> tuple[str, str, dict[str, Any]]:
    looks_json = any(text.lstrip().startswith(("{", "[")) for text in (a, b))
    case = scorers.Case(expects_json=looks_json)
    score_a = scorers.score(a, case, HEURISTIC_WEIGHTS).total * bool(a.strip())
    score_b = scorers.score(b, case, HEURISTIC_WEIGHTS).total * bool(b.strip())
    return _compare(score_a, score_b), T.Source.HEURISTIC, {"score_a": score_a, "score_b": score_b}


JUDGE_PROMPT = (
    "Two assistants answered the same request. Which answer is better: more correct, more helpful, better formatted?\n\n"
    "Request:\n{request}\n\nAnswer 1:\n{first}\n\nAnswer 2:\n{second}\n\nReply with exactly one of: 1, 2, tie."
)
_JUDGE_REPLY = re.compile(r"\b(1|2|tie)\b", re.IGNORECASE)


def ask_judge(request_text: str, a: str, b: str, *, key: object) -> tuple[str, dict[str, Any]]:
    """The judge's verdict (A, B or tie). The answers' order is shuffled by `key` so a judge's
    preference for a position cannot favour one side. Raises ExperimentError when it cannot tell."""
    swap = bucket("judge", key) < 0.5
    first, second = (b, a) if swap else (a, b)
    messages = [{"role": "user", "content": JUDGE_PROMPT.format(request=request_text, first=first, second=second)}]
    try:  # any failure of the judge (transport, format, model) falls back to the next source
        if settings.JUDGE_URL:
            from registry.serving.remote import chat_completion

            answer = chat_completion(
                settings.JUDGE_URL, settings.JUDGE_API_KEY, settings.JUDGE_MODEL, messages, max_tokens=8, temperature=0
            )
            reply = str(answer["choices"][0]["message"]["content"] or "")
        else:
            judge = ModelVersion.objects.filter(name=settings.JUDGE_MODEL).first()
            if judge is None:
                raise ExperimentError(f"JUDGE_MODEL names no registered version ({settings.JUDGE_MODEL!r}).")
            if judge.tainted:  # a tainted version never serves, as a judge neither
                raise ExperimentError(f"The judge {judge.name} is tainted and never serves.")
            reply = serving.generate(version=judge, messages=messages, max_tokens=8, temperature=0, n=1).texts[0]
    except ExperimentError:
        raise
    except Exception as exc:
        raise ExperimentError(f"The judge failed: {type(exc).__name__}: {exc}") from None
    found = _JUDGE_REPLY.search(reply)
    if found is None:
        raise ExperimentError(f"The judge's reply names no answer: {reply[:80]!r}")
    choice = found.group(1).lower()
    if choice == "tie":
        verdict = T.Verdict.TIE
    else:
        first_won = choice == "1"
        verdict = T.Verdict.A if first_won != swap else T.Verdict.B
    return verdict, {"judge_reply": reply[:200], "order": "BA" if swap else "AB"}


def verdict_for(interaction: Interaction, a: str, b: str, *, truth: str | None = None) -> tuple[str, str, dict[str, Any]]:
    """The verdict from the best source available: ground truth, else the judge, else heuristics."""
    truth = ground_truth(interaction) if truth is None else truth
    if truth:
        return _by_reference(a, b, truth, task=interaction.task)
    if settings.JUDGE_MODEL:
        request_text = "\n".join(f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages_of(interaction))
        try:
            verdict, detail = ask_judge(request_text, a, b, key=interaction.pk)
            return verdict, T.Source.JUDGE, detail
        except ExperimentError as exc:
            verdict, source, detail = _by_heuristics(a, b)
            return verdict, source, {**detail, "judge_error": exc.one_line()}
    return _by_heuristics(a, b)


def trial_record(*, experiment_id: int, interaction_id: str, max_tokens: int = 64, temperature: float = 0.0) -> Trial | None:
    """Answer the sampled interaction with the other side (with the request's token budget and
    temperature), judge both, store the trial and evaluate the experiment. Idempotent (a retried
    task finds its trial)."""
    experiment = Experiment.objects.select_related("control", "challenger").filter(pk=experiment_id).first()
    interaction = Interaction.objects.select_related("subject").filter(pk=interaction_id).first()
    if experiment is None or interaction is None or experiment.status != E.Status.RUNNING:
        return None  # ended meanwhile, or the subject was erased
    existing = Trial.objects.filter(experiment=experiment, interaction=interaction).first()
    if existing is not None:
        return existing
    shown = "B" if interaction.model_version == experiment.challenger.name else "A"
    other = experiment.control if shown == "B" else experiment.challenger
    error, text, latency, lessons = "", "", None, None
    try:  # the other side is served as the shown one was: lessons and the person's preamble, then generation
        generation, context = answer(
            version=other, messages=messages_of(interaction), max_tokens=max_tokens, temperature=temperature,
            subject=interaction.subject,
        )  # fmt: skip
        text, latency, lessons = generation.texts[0], generation.latency_ms, context.metadata()["lessons"]
    except Exception as exc:  # the other side failing is a loss for it, not a lost trial
        logger.warning("experiment %s: %s failed on %s: %s", experiment.pk, other.name, interaction.pk, exc)
        error = f"{other.name} failed: {exc}"[:2000]
    seen, seen_latency = interaction.output_text, interaction.latency_ms
    a, b = (seen, text) if shown == "A" else (text, seen)
    latency_a, latency_b = (seen_latency, latency) if shown == "A" else (latency, seen_latency)
    truth = ground_truth(interaction)
    if error:
        verdict, source, detail = shown, T.Source.HEURISTIC, {"error": error}
    else:
        verdict, source, detail = verdict_for(interaction, a, b, truth=truth)
    if lessons is not None:
        detail = {**detail, "lessons_other": lessons}  # what the other side was given (the shown side's: metadata)
    try:
        with transaction.atomic():
            trial = Trial.objects.create(
                experiment=experiment, interaction=interaction, shown=shown, output_a=a, output_b=b, latency_a_ms=latency_a,
                latency_b_ms=latency_b, error=error, verdict=verdict, source=source, detail=detail,
                **truth_fields(source, detail, truth),
            )  # fmt: skip
    except IntegrityError:  # a retried task raced this one (or the interaction was erased meanwhile)
        return Trial.objects.filter(experiment=experiment, interaction_id=interaction_id).first()
    experiment_evaluate(experiment=experiment)
    return trial


# --- Evaluation -----------------------------------------------------------------------------


def _ratings(**interaction_filter: Any) -> dict[Any, int]:
    """The latest rating of each matching interaction on a 1-5 scale (a thumb up is 5, down is 1),
    in the order the interactions were made."""
    rows = Feedback.objects.filter(kind__in=[Feedback.Kind.SCORE, Feedback.Kind.THUMB], **interaction_filter)
    latest: dict[Any, tuple[Any, int]] = {}
    for interaction_id, made, kind, score, thumb in rows.order_by("created_at", "id").values_list(
        "interaction_id", "interaction__created_at", "kind", "score", "thumb"
    ):
        latest[interaction_id] = (made, Feedback.rating(kind, score, thumb))
    return {i: rating for i, (_, rating) in sorted(latest.items(), key=lambda item: (item[1][0], str(item[0])))}


def _refresh_verdicts(experiment: Experiment) -> None:
    """Upgrade verdicts when better evidence arrived: a correction (ground truth) for any trial;
    for canaries, a rated challenger answer paired with a rated control answer (in order)."""
    pending = list(experiment.trials.exclude(source=T.Source.GROUND_TRUTH).filter(error="").select_related("interaction"))
    corrected = set(
        Feedback.objects.filter(interaction_id__in=[t.interaction_id for t in pending], kind=Feedback.Kind.CORRECTION).values_list(
            "interaction_id", flat=True
        )
    )
    for trial in pending:
        if trial.interaction_id in corrected:
            truth = ground_truth(trial.interaction)
            trial.verdict, trial.source, trial.detail = _by_reference(trial.output_a, trial.output_b, truth, task=experiment.task)
            for name, value in truth_fields(trial.source, trial.detail, truth).items():
                setattr(trial, name, value)
            trial.save(update_fields=["verdict", "source", "detail", "ground_truth", "score_a", "score_b"])
    if experiment.mode != E.Mode.CANARY:
        return
    shown_b = [t for t in pending if t.interaction_id not in corrected and t.shown == "B"]
    rated_b = _ratings(interaction_id__in=[t.interaction_id for t in shown_b])
    rated_a = _ratings(
        interaction__task=experiment.task,
        interaction__model_version=experiment.control.name,
        interaction__created_at__gte=experiment.created_at,
    )
    partners = iter(rated_a)
    for trial in shown_b:
        if trial.interaction_id not in rated_b:
            continue
        partner = next(partners, None)
        if partner is None:
            break
        rating_a, rating_b = rated_a[partner], rated_b[trial.interaction_id]
        paired = (
            _compare(rating_a, rating_b),
            T.Source.FEEDBACK,
            {"rating_a": rating_a, "rating_b": rating_b, "paired_with": str(partner)},
        )
        if (trial.verdict, trial.source, trial.detail) != paired:  # pairs are rebuilt at every evaluation; write only changes
            trial.verdict, trial.source, trial.detail = paired
            trial.save(update_fields=["verdict", "source", "detail"])


def _sample_ratio(experiment: Experiment) -> dict[str, Any] | None:
    """Canary: distinct subjects served by each arm since the start, against the intended split."""
    if experiment.mode != E.Mode.CANARY:
        return None
    served = Interaction.objects.filter(task=experiment.task, created_at__gte=experiment.created_at, subject__isnull=False)
    control = served.filter(model_version=experiment.control.name).values("subject").distinct().count()
    challenger = served.filter(model_version=experiment.challenger.name).values("subject").distinct().count()
    if not 0 < experiment.sample_rate < 1:
        return None  # no split to check
    statistic, p = statistics.sample_ratio_mismatch([control, challenger], [1 - experiment.sample_rate, experiment.sample_rate])
    alarm = control + challenger >= SRM_MIN_SUBJECTS and p < SRM_ALPHA
    return {"control_subjects": control, "challenger_subjects": challenger, "chi2": round(statistic, 3), "p": p, "alarm": alarm}


def _guardrails(trials: list[Trial]) -> dict[str, Any]:
    """Per side: the share of failed answers and the p95 latency over the trials."""
    out: dict[str, Any] = {}
    for side in ("a", "b"):
        latencies = [t[f"latency_{side}_ms"] for t in trials if t[f"latency_{side}_ms"] is not None]
        failed = sum(1 for t in trials if t["error"] and t["verdict"] != side.upper())  # a failed side loses its trial
        out[side] = {"error_rate": round(failed / len(trials), 4) if trials else 0.0, "latency_p95_ms": percentile(latencies, 0.95)}
    return out


def _finish(experiment: Experiment, decision: str, reason: str, actor: str, *, status: str = E.Status.COMPLETED) -> None:
    experiment.status, experiment.decision, experiment.reason = status, decision, reason
    experiment.decided_by, experiment.ended_at = actor, timezone.now()
    experiment.save()
    event_record(
        task=experiment.task, action=A.AB_TEST_COMPLETED, actor=actor, from_version=experiment.control,
        to_version=experiment.challenger, reason=f"experiment {experiment.pk}: {decision}: {reason}",
    )  # fmt: skip
    forget_cache(experiment.task)


def _keep_control(experiment: Experiment, reason: str, actor: str, *, status: str = E.Status.COMPLETED) -> None:
    _finish(experiment, E.Recommendation.KEEP, reason, actor, status=status)
    challenger = ModelVersion.objects.get(pk=experiment.challenger_id)
    if challenger.status in (ModelVersion.Status.CANDIDATE, ModelVersion.Status.APPROVED):
        version_reject(version=challenger, actor=actor, reason=f"experiment {experiment.pk} kept {experiment.control.name}: {reason}")


def _promote(experiment: Experiment, actor: str, reason: str) -> None:
    challenger = ModelVersion.objects.get(pk=experiment.challenger_id)
    if challenger.status == ModelVersion.Status.CANDIDATE:
        challenger = version_approve(version=challenger, actor=actor, reason=f"won experiment {experiment.pk}")
    version_promote(version=challenger, actor=actor, reason=f"won experiment {experiment.pk}: {reason}")
    _finish(experiment, E.Recommendation.PROMOTE, reason, actor)


def _locked(experiment: Experiment) -> Experiment:
    """The experiment re-read under a row lock (callers run in a transaction)."""
    return Experiment.objects.select_for_update().select_related("control", "challenger").get(pk=experiment.pk)


@transaction.atomic
def experiment_evaluate(*, experiment: Experiment, actor: str = "experiments") -> Experiment:
    """Recompute the numbers and act on them: promote (auto-promote on) or wait for an approval
    when the challenger wins; keep the control when it wins, when the sample ratio is broken,
    when the control stopped being the champion, or when the stopping rules run out."""
    experiment = _locked(experiment)
    if experiment.status not in OPEN:
        return experiment
    champion = serving.champion(experiment.task)
    if champion.pk != experiment.control_id:
        _finish(experiment, "", f"the control {experiment.control.name} is no longer the champion ({champion.name} is)", actor,
                status=E.Status.STOPPED)  # fmt: skip
        return experiment
    if not servable(experiment.challenger):
        state = "tainted" if experiment.challenger.tainted else experiment.challenger.status
        _finish(experiment, "", f"the challenger {experiment.challenger.name} is {state}", actor, status=E.Status.STOPPED)
        return experiment
    if experiment.status != E.Status.RUNNING:
        return experiment  # awaiting approval: the numbers are final
    _refresh_verdicts(experiment)
    trials = list(
        experiment.trials.order_by("created_at", "id").values(
            "verdict", "source", "shown", "error", "latency_a_ms", "latency_b_ms", "replayed"
        )
    )
    history = [t["verdict"] for t in trials]
    rec = statistics.recommend(history, min_trials=experiment.min_trials, min_win_rate=experiment.min_win_rate, alpha=experiment.alpha)
    rate = rec.win_rate
    sources: dict[str, int] = {}
    for t in trials:
        sources[t["source"]] = sources.get(t["source"], 0) + 1
    stats: dict[str, Any] = {
        "trials": len(history), "wins": rate.wins, "losses": rate.losses, "ties": rate.ties, "tie_share": round(rate.tie_share, 4),
        "win_rate": round(rate.rate, 4), "win_rate_low": round(rate.low, 4), "win_rate_high": round(rate.high, 4),
        "p_value": rec.p_value, "sources": sources, "guardrails": _guardrails(trials),
        "replayed": sum(1 for t in trials if t["replayed"]),
    }  # fmt: skip
    srm = _sample_ratio(experiment)
    if srm is not None:
        stats["sample_ratio"] = srm
    experiment.stats, experiment.recommendation, experiment.reason = stats, rec.decision, rec.reason
    experiment.evaluated_at = timezone.now()
    experiment.save(update_fields=["stats", "recommendation", "reason", "evaluated_at"])
    if srm is not None and srm["alarm"]:
        reason = (f"sample ratio mismatch: {srm['control_subjects']} control vs {srm['challenger_subjects']} challenger subjects "
                  f"for an intended {experiment.sample_rate:.0%} (p = {srm['p']:.2g} < {SRM_ALPHA}); the assignment is broken")  # fmt: skip
        _finish(experiment, E.Recommendation.KEEP, reason, actor, status=E.Status.STOPPED)
    elif rec.decision == E.Recommendation.PROMOTE:
        event_record(
            task=experiment.task, action=A.READY_FOR_PROMOTION, actor=actor, from_version=experiment.control,
            to_version=experiment.challenger, reason=f"experiment {experiment.pk}: {rec.reason}",
        )  # fmt: skip
        if PromotionPolicy.objects.filter(task=experiment.task, auto_promote=True).exists():
            try:
                with transaction.atomic():
                    _promote(experiment, "auto-promote", rec.reason)
            except RegistryError as exc:
                _finish(experiment, "", f"auto-promotion refused: {exc.one_line()}", actor, status=E.Status.STOPPED)
        else:
            experiment.status = E.Status.AWAITING_APPROVAL
            experiment.save(update_fields=["status"])
            forget_cache(experiment.task)
    elif rec.decision == E.Recommendation.KEEP:
        _keep_control(experiment, rec.reason, actor)
    elif len(history) >= experiment.max_trials:
        _keep_control(experiment, f"undecided after {len(history)} trials (max {experiment.max_trials}): {rec.reason}", actor)
    elif timezone.now() - experiment.created_at >= timedelta(days=experiment.max_days):
        _keep_control(experiment, f"undecided after {experiment.max_days} days: {rec.reason}", actor)
    return experiment


def experiments_evaluate_all() -> list[Experiment]:
    """Every open experiment; one that fails is logged and does not stop the others."""
    done = []
    for experiment in Experiment.objects.filter(status__in=OPEN).order_by("pk"):
        try:
            done.append(experiment_evaluate(experiment=experiment))
        except Exception:
            logger.exception("evaluating experiment %s failed", experiment.pk)
    return done


# --- Decisions by staff ---------------------------------------------------------------------


@transaction.atomic
def experiment_approve(*, experiment: Experiment, actor: str, reason: str = "") -> Experiment:
    """Accept a promote_challenger recommendation: the challenger becomes the champion."""
    experiment = _locked(experiment)
    if experiment.status != E.Status.AWAITING_APPROVAL:
        raise ExperimentError(f"Experiment {experiment.pk} is {experiment.status}; only one awaiting approval can be approved.",
                              code="conflict")  # fmt: skip
    champion = serving.champion(experiment.task)
    if champion.pk != experiment.control_id:
        raise ExperimentError(f"The control {experiment.control.name} is no longer the champion ({champion.name} is): the challenger "
                              "was never compared with it. Stop this experiment and start a new one.", code="conflict")  # fmt: skip
    _promote(experiment, actor, reason or experiment.reason)
    return experiment


@transaction.atomic
def experiment_reject(*, experiment: Experiment, actor: str, reason: str = "") -> Experiment:
    """Keep the control: the experiment ends and the challenger is rejected."""
    experiment = _locked(experiment)
    if experiment.status not in OPEN:
        raise ExperimentError(f"Experiment {experiment.pk} is {experiment.status}; it already ended.", code="conflict")
    _keep_control(experiment, reason or f"rejected by {actor}", actor)
    return experiment


@transaction.atomic
def experiment_stop(*, experiment: Experiment, actor: str, reason: str = "") -> Experiment:
    """End the experiment without a decision (the challenger stays as it was)."""
    experiment = _locked(experiment)
    if experiment.status not in OPEN:
        raise ExperimentError(f"Experiment {experiment.pk} is {experiment.status}; it already ended.", code="conflict")
    _finish(experiment, "", reason or f"stopped by {actor}", actor, status=E.Status.STOPPED)
    return experiment


RULES = ("min_trials", "max_trials", "max_days", "min_win_rate", "alpha")
EDITABLE = (*RULES, "sample_rate")


def changes_problems(experiment: Experiment, values: dict[str, Any]) -> dict[str, list[str]]:
    """What is wrong with new stopping rules and sample rate for this experiment (empty when
    fine). A shadow's sample rate may change (which control requests the challenger also answers);
    a canary's may not (subjects would move between arms mid-way)."""
    problems = rules_problems({name: values[name] for name in RULES})
    rate = values["sample_rate"]
    if not 0 < rate <= 1:
        problems["sample_rate"] = ["A share above 0 and at most 1."]
    elif experiment.mode == E.Mode.CANARY and rate != experiment.sample_rate:
        problems["sample_rate"] = ["A running canary's share cannot change (subjects would move between arms): stop it and start another."]
    return problems


@transaction.atomic
def experiment_update_rules(*, experiment: Experiment, actor: str, **rules: Any) -> Experiment:
    """Change a running experiment's stopping rules and (shadow) sample rate: the admin and
    PATCH /api/v1/experiments/{id}. Its mode never changes."""
    locked = _locked(experiment)
    if locked.status != E.Status.RUNNING:
        raise ExperimentError(f"Experiment {locked.pk} is {locked.status}; only a running one's rules can change.", code="conflict")
    unknown = set(rules) - set(EDITABLE)
    if unknown:
        raise ExperimentError("Only the stopping rules and the sample rate can change.", fields={n: ["Not editable."] for n in unknown})
    values = {name: rules[name] if rules.get(name) is not None else getattr(locked, name) for name in EDITABLE}
    problems = changes_problems(locked, values)
    if problems:
        raise ExperimentError("The stopping rules are invalid; nothing changed.", fields=problems)
    for name, value in values.items():
        setattr(locked, name, value)
    locked.save(update_fields=list(EDITABLE))
    forget_cache(locked.task)
    logger.info("experiment %s: rules changed by %s: %s", locked.pk, actor, values)
    return experiment_evaluate(experiment=locked, actor=actor)


def trials_of(*, experiment: Experiment) -> Any:
    return experiment.trials.select_related("interaction").order_by("-created_at", "-id")


def trials_unpair(*, interaction_ids: list[str]) -> int:
    """Canary trials whose verdict paired a rating of one of these (erased) interactions go back
    to a verdict of their own answers; a running experiment may pair them again."""
    count = 0
    for trial in Trial.objects.filter(source=T.Source.FEEDBACK, detail__paired_with__in=interaction_ids):
        trial.verdict, trial.source, trial.detail = _by_heuristics(trial.output_a, trial.output_b)
        trial.save(update_fields=["verdict", "source", "detail"])
        count += 1
    return count
