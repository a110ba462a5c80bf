"""What abtesting does when the registry registers a version, serves a request or taints versions,
and when a subject is erased."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Q
from django.dispatch import receiver

from interactions.signals import subject_erased
from learning_platform.admin_log import admin_log_forget
from registry.erasure import retraining_queue
from registry.signals import choose_version, generation_served, version_registered, versions_tainted

from . import experiments
from .models import EvalCase, EvalRun, Experiment, Trial


@receiver(version_registered, dispatch_uid="abtesting.evaluate_candidate")
def evaluate_candidate(sender: Any, version: Any, **kwargs: Any) -> None:
    """Every new candidate meets the champion in the arena, on the task queue (AUTO_EVALUATE)."""
    if settings.AUTO_EVALUATE:
        from django_q.tasks import async_task

        async_task("abtesting.tasks.evaluate_candidate", version.pk, q_options={"group": "arena"})


@receiver(choose_version, dispatch_uid="abtesting.canary")
def canary(sender: Any, task: str, client: Any, user_id: str | None, **kwargs: Any) -> Any:
    return experiments.canary_version(task=task, client=client, user_id=user_id)


@receiver(generation_served, dispatch_uid="abtesting.sample_trial")
def sample_trial(
    sender: Any, task: str, version: Any, interaction_id: str | None, max_tokens: int = 64, temperature: float = 0.0, **kwargs: Any
) -> None:
    experiments.on_served(task=task, version=version, interaction_id=interaction_id, max_tokens=max_tokens, temperature=temperature)


@receiver(subject_erased, dispatch_uid="abtesting.erase_derived")
def erase_derived(sender: Any, interaction_ids: list[Any], **kwargs: Any) -> dict[str, int]:
    """Trials (both answers to the subject's requests) and evaluation cases made from their data."""
    if not interaction_ids:
        return {}
    trials = Trial.objects.filter(interaction_id__in=interaction_ids).delete()[0]
    # canary trials judged by pairing another subject's rating with one of theirs lose that pairing
    unpaired = experiments.trials_unpair(interaction_ids=[str(i) for i in interaction_ids])
    doomed = EvalCase.objects.filter(source_interaction_id__in=interaction_ids)
    case_ids = set(doomed.values_list("pk", flat=True))
    scrubbed = 0
    for run in EvalRun.objects.filter(suite_id__in=doomed.values("suite_id").distinct()):
        kept = [row for row in run.results if row.get("id") not in case_ids]
        if len(kept) != len(run.results):  # the answers given to their prompts go with the cases
            run.results = kept
            run.save(update_fields=["results"])
            scrubbed += 1
    # the admin's history quotes a case (its repr) when staff edited it, inline on its suite too
    logged = admin_log_forget(objects=[(EvalCase, case_ids)], texts=[str(case) for case in doomed])
    cases = doomed.delete()[0]
    return {
        "trials": trials, "trials_unpaired": unpaired, "eval_cases": cases, "eval_runs_scrubbed": scrubbed, "admin_log_entries": logged,
    }  # fmt: skip


@receiver(versions_tainted, dispatch_uid="abtesting.stop_tainted")
def stop_tainted(sender: Any, versions: list[Any], erasure_id: int | None = None, **kwargs: Any) -> dict[str, int]:
    """An experiment pitting a tainted version (shadow or canary, either side) stops at once, in
    the erasure's transaction; a tainted challenger is retrained when the task's policy says so."""
    ids = {v.pk for v in versions}
    stopped = retrained = 0
    for experiment in Experiment.objects.filter(status__in=experiments.OPEN).filter(
        Q(control_id__in=ids) | Q(challenger_id__in=ids)
    ).select_related("control", "challenger"):  # fmt: skip
        side = experiment.challenger if experiment.challenger_id in ids else experiment.control
        experiments.experiment_stop(
            experiment=experiment, actor="erasure", reason=f"erasure {erasure_id}: {side.name} is tainted and never serves"
        )
        stopped += 1
        if experiment.challenger_id in ids and retraining_queue(version=experiment.challenger, erasure_id=erasure_id):
            retrained += 1
    return {"experiments_stopped": stopped, "versions_retrained": retrained}
