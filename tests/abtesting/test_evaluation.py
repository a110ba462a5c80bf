from __future__ import annotations

import pytest

from abtesting import services
from abtesting.models import CATEGORIES, EvalSuite
from registry.serving import champion
from tests.training.conftest import sft_dataset

pytestmark = pytest.mark.django_db


def test_the_default_suite_covers_eight_categories_once():
    suite = services.suite_default(task="support")
    assert {c.category for c in suite.cases.all()} == set(CATEGORIES)
    assert services.suite_default(task="support") == suite
    assert EvalSuite.objects.count() == 1


def test_a_suite_is_made_from_a_datasets_eval_split(training_settings):
    dataset = sft_dataset(count=40, eval_ratio=0.25)
    suite = services.suite_from_dataset(dataset=dataset)
    assert suite.cases.count() == dataset.stats["splits"]["eval"]
    case = suite.cases.first()
    assert case.expected.startswith('{"action"')
    no_eval = sft_dataset(count=10, eval_ratio=0, seed=5)
    with pytest.raises(services.EvaluationError, match="no eval split"):
        services.suite_from_dataset(dataset=no_eval)


@pytest.mark.slow
def test_an_evaluation_run_scores_every_case_on_the_tiny_model(training_settings):
    suite = services.suite_default(task="support")
    version = champion("support")
    run = services.eval_run(version=version, suite=suite)
    assert run.status == "succeeded"
    assert len(run.results) == suite.cases.count()
    assert set(run.by_category) == set(CATEGORIES)
    assert 0 <= run.score <= 1
    assert all(0 <= r["score"] <= 1 and r["latency_ms"] >= 0 for r in run.results)
    verdict, _, _ = services.arena_compare(candidate=version, champion=version, suite=suite)
    assert verdict.wins + verdict.losses + verdict.ties == suite.cases.count()
    assert not verdict.regressions, "the same model cannot regress against itself"


@pytest.mark.slow
def test_the_evaluate_command_and_the_admin_show_a_run(training_settings, client, django_user_model):
    import io

    from django.core.management import CommandError, call_command

    version = champion("support")
    out = io.StringIO()
    call_command("evaluate", version.name, stdout=out)
    assert "summarization" in out.getvalue()
    assert f"{version.name} on support/default: score" in out.getvalue()
    with pytest.raises(CommandError, match="No model version named 'nope'"):
        call_command("evaluate", "nope")
    with pytest.raises(CommandError, match="No suite named 'x'"):
        call_command("evaluate", version.name, "--suite", "x")
    client.force_login(django_user_model.objects.create_superuser("staff", "", "pw"))
    from abtesting.models import EvalRun

    run = EvalRun.objects.get()
    page = client.get(f"/admin/abtesting/evalrun/{run.pk}/change/").content.decode()
    assert "arithmetic: score" in page
    assert client.get(f"/admin/abtesting/evalsuite/{run.suite_id}/change/").status_code == 200


@pytest.mark.slow
def test_erasing_a_subject_removes_the_cases_made_from_their_data_and_the_answers_to_them(training_settings):
    from abtesting.models import EvalCase, EvalRun
    from interactions.models import Interaction, Subject
    from interactions.services import subject_erase_by_subject, subject_hash

    dataset = sft_dataset(count=40, eval_ratio=0.25)
    suite = services.suite_from_dataset(dataset=dataset)
    case = suite.cases.first()
    interaction = Interaction.objects.get(pk=case.source_interaction_id)
    subject = Subject.objects.create(client=interaction.client, user_hash=subject_hash(client=interaction.client, user_id="ann"))
    Interaction.objects.filter(pk=interaction.pk).update(subject=subject)
    run = services.eval_run(version=champion("commands"), suite=suite)
    assert case.pk in {row["id"] for row in run.results}
    erasure = subject_erase_by_subject(subject=subject, requested_by="test")
    assert erasure.counts["eval_cases"] == 1
    assert erasure.counts["eval_runs_scrubbed"] == 1
    assert not EvalCase.objects.filter(pk=case.pk).exists()
    run = EvalRun.objects.get(pk=run.pk)
    assert case.pk not in {row["id"] for row in run.results}
    assert len(run.results) == suite.cases.count()
