"""The control room through the test client: what it shows, its alerts, its live JSON, its bounded queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from abtesting.models import EvalCase, EvalReport, EvalRun, EvalSuite, Experiment
from curation.models import CurationRun, DatasetItem
from interactions.models import ErasureRequest, Interaction, Subject
from interactions.services import subject_erase_by_subject
from registry.models import LifecycleEvent, ModelVersion
from tests.dashboard.conftest import curve, seed_loop
from tests.factories import ApiClientFactory, FeedbackFactory, InteractionFactory
from training.models import TrainingJob

pytestmark = pytest.mark.django_db


def test_the_dashboard_shows_the_loop_of_each_task(staff_client):
    seeded = seed_loop()
    page = staff_client.get("/admin/").content.decode()
    assert "Task <code>commands</code>" in page
    for step in ("interactions", "with feedback", "in a frozen dataset", "trained on"):
        assert step in page
    assert f"★ {seeded['champion'].name}" in page
    assert "Ready for the next fine-tune?" in page
    assert f'data-live-job="{seeded["running"].pk}"' in page
    assert f'data-live-experiment="{seeded["experiment"].pk}"' in page
    assert "30 trials, win rate" in page
    assert page.count('<svg class="chart"') >= 4  # loss, win rate, p-value, genealogy, curation
    for text in (">step</text>", ">loss</text>", ">trials</text>", ">win rate</text>"):  # axis labels
        assert text in page
    assert "<td>register</td>" in page  # lifecycle events
    assert "<td>promote</td>" in page


def test_it_raises_an_alert_for_each_thing_that_needs_a_person(staff_client):
    seeded = seed_loop()
    stale = timezone.now() - timedelta(seconds=settings.JOB_STALE_SECONDS * 2)
    TrainingJob.objects.filter(pk=seeded["running"].pk).update(heartbeat_at=stale)
    champion = seeded["champion"]
    ModelVersion.objects.filter(pk=champion.pk).update(tainted=True, tainted_reason="erasure 7 removed rows it was trained on")
    page = staff_client.get("/admin/").content.decode()
    alerts = page[page.index('id="alerts"') : page.index("Task <code>")]
    assert f"the champion of commands, {champion.name}, is tainted" in alerts
    assert f"training job {seeded['failed'].pk} failed: RuntimeError: CUDA out of memory" in alerts
    assert f"training job {seeded['running'].pk} is running but its heart stopped" in alerts
    assert f"experiment {seeded['stopped'].pk} (commands) was stopped by its sample-ratio check" in alerts
    assert f"/admin/training/trainingjob/{seeded['failed'].pk}/change/" in alerts
    assert "tainted: never serves" in page


def test_an_untroubled_platform_shows_no_alerts(staff_client):
    page = staff_client.get("/admin/").content.decode()
    assert "No alerts" in page
    assert "No task has data yet" in page


def test_the_live_json_reports_a_running_jobs_progress_and_an_experiments_trials(staff_client, client):
    seeded = seed_loop()
    job, experiment = seeded["running"], seeded["experiment"]
    url = f"/admin/dashboard/live.json?job={job.pk}&experiment={experiment.pk}&trials=1"
    first = staff_client.get(url).json()
    assert first["jobs"][str(job.pk)]["progress"] == 30.0
    TrainingJob.objects.filter(pk=job.pk).update(progress=80.0, step=8, loss_curve=curve(8))
    now = staff_client.get(url).json()
    live = now["jobs"][str(job.pk)]
    assert live["text"] == "running: 80% (step 8 of 10)"
    assert live["chart"].count('<circle class="point"') > first["jobs"][str(job.pk)]["chart"].count('<circle class="point"')
    trials = now["experiments"][str(experiment.pk)]
    assert trials["trials"] == 30
    assert trials["win_rate"] == 0.6667
    assert "ls -la 29" in trials["trials_html"]
    assert "<svg" in trials["win_chart"]
    client.logout()
    assert client.get(url).status_code == 403


def test_the_root_sends_staff_to_the_dashboard_browsers_to_the_login_and_api_clients_to_the_docs(staff_client, client):
    assert staff_client.get("/")["Location"] == "/admin/"
    staff_client.logout()
    assert staff_client.get("/", HTTP_ACCEPT="text/html")["Location"] == "/admin/login/?next=/admin/"
    assert staff_client.get("/", HTTP_ACCEPT="application/json").json()["docs"] == "/api/docs/"
    assert staff_client.get("/admin/")["Location"].startswith("/admin/login/")


def test_the_dashboard_reads_a_bounded_number_of_rows(staff_client, django_assert_max_num_queries):
    seed_loop()
    client = ApiClientFactory()
    for task in ("summaries", "translation", "support"):
        for n in range(3):
            ModelVersion.objects.create(task=task, name=f"base-{task}-v{n}", number=n, base_model="base")
        FeedbackFactory(interaction=InteractionFactory(client=client, task=task))
    # 4 tasks: 3 queries of readiness each; the rest one per kind of read (32 measured), whatever the rows
    with django_assert_max_num_queries(4 * 3 + 21):
        page = staff_client.get("/admin/")
    assert page.status_code == 200
    assert page.content.decode().count('class="task-card"') == 4


def test_audit_tables_offer_no_edit_and_no_delete(staff_client):
    seeded = seed_loop()
    interaction = InteractionFactory(task="commands")
    subject = Subject.objects.create(client=interaction.client, user_hash="f" * 64)
    Interaction.objects.filter(pk=interaction.pk).update(subject=subject)
    erasure = subject_erase_by_subject(subject=subject, requested_by="test")
    item = DatasetItem.objects.filter(dataset=seeded["datasets"][0]).first()
    event = LifecycleEvent.objects.first()
    logged = Interaction.objects.first()
    for model, pk in (("interactions/erasurerequest", erasure.pk), ("registry/lifecycleevent", event.pk),
                      ("curation/datasetitem", item.pk), ("interactions/interaction", logged.pk)):  # fmt: skip
        listing = staff_client.get(f"/admin/{model}/").content.decode()
        assert "delete_selected" not in listing, model
        page = staff_client.get(f"/admin/{model}/{pk}/change/").content.decode()
        assert "deletelink" not in page, model
        assert 'name="_save"' not in page, model
        assert staff_client.post(f"/admin/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403, model
    assert ErasureRequest.objects.filter(pk=erasure.pk).exists()
    Subject.objects.create(client=interaction.client, user_hash="a" * 64)
    assert 'value="erase"' in staff_client.get("/admin/interactions/subject/").content.decode()  # the erasure service's door stays


def test_tainted_versions_and_datasets_show_a_red_warning_and_erased_items_show(staff_client):
    seeded = seed_loop()
    tainted = seeded["tainted"]
    listing = staff_client.get("/admin/registry/modelversion/").content.decode()
    assert listing.count("⚠ tainted") == 1
    assert 'alt="True"' not in listing  # no green check anywhere in the list
    page = staff_client.get(f"/admin/registry/modelversion/{tainted.pk}/change/").content.decode()
    assert "⚠ This version is tainted and never serves or trains again" in page
    assert f"/admin/training/trainingjob/{tainted.training_job_id}/change/" in page  # version -> job
    assert f"/admin/curation/dataset/{tainted.dataset_id}/change/" in page  # version -> dataset
    assert "Traffic, last 30 days" in page
    assert "no traffic in the period" in page
    dataset = seeded["datasets"][0]
    item = DatasetItem.objects.filter(dataset=dataset).first()
    interaction = Interaction.objects.get(pk=item.source_interaction_id)
    subject = Subject.objects.create(client=interaction.client, user_hash="e" * 64)
    Interaction.objects.filter(pk=interaction.pk).update(subject=subject)
    subject_erase_by_subject(subject=subject, requested_by="test")
    page = staff_client.get(f"/admin/curation/dataset/{dataset.pk}/change/").content.decode()
    assert "⚠ This dataset is tainted" in page
    assert "Erasures removed 1 of the 24 items frozen" in page
    assert "23 are left" in page
    assert "(1 erased)" in staff_client.get("/admin/curation/dataset/").content.decode()


def test_the_experiment_page_charts_the_trials_and_shows_both_answers_beside_the_truth(staff_client):
    seeded = seed_loop()
    experiment = seeded["experiment"]
    page = staff_client.get(f"/admin/abtesting/experiment/{experiment.pk}/change/").content.decode()
    assert page.index('<svg class="chart"') < page.index("Latest trials")
    assert "Challenger win rate (ties excluded) with its 95% interval" in page
    assert "Sequential p-value" in page
    assert "<b>truth:</b> ls -la 29" in page
    row = page[page.index("<b>truth:</b> ls -la 29") : page.index("</tr>", page.index("<b>truth:</b> ls -la 29"))]
    assert "ls -l 29" in row  # the control's answer
    assert "0.50" in row  # its score
    assert "1.00" in row  # the challenger's
    assert f"/admin/training/trainingjob/{experiment.challenger.training_job_id}/change/" in page  # experiment -> job


def test_arena_cases_report_trends_version_traffic_and_curation_runs_are_drawn(staff_client):
    seeded = seed_loop()
    champion, challenger, experiment = seeded["champion"], seeded["challenger"], seeded["experiment"]
    suite = EvalSuite.objects.create(task="commands", name="shell")
    case = EvalCase.objects.create(suite=suite, category="listing", messages=[{"role": "user", "content": "list all files"}],
                                   expected="ls -la")  # fmt: skip
    mine = EvalRun.objects.create(version=challenger, suite=suite, status="succeeded", score=1.0,
                                  results=[{"id": case.pk, "category": "listing", "output": "ls -la", "score": 1.0}])  # fmt: skip
    theirs = EvalRun.objects.create(version=champion, suite=suite, status="succeeded", score=0.4,
                                    results=[{"id": case.pk, "category": "listing", "output": "ls", "score": 0.4}])  # fmt: skip
    Experiment.objects.filter(pk=experiment.pk).update(arena={"reason": "won 1 of 1 categories", "runs": [[mine.pk, theirs.pk]]})
    page = staff_client.get(f"/admin/abtesting/experiment/{experiment.pk}/change/").content.decode()
    arena = page[page.index("won 1 of 1 categories") :]
    for text in ("list all files", "<td>ls -la</td><td>1.00</td><td>ls</td><td>0.40</td>", f"/admin/abtesting/evalrun/{mine.pk}/change/"):
        assert text in arena
    assert "list all files" in staff_client.get(f"/admin/abtesting/evalrun/{mine.pk}/change/").content.decode()

    versions = [
        {"version": v.name, "status": v.status, "suites": [{"suite": "shell", "score": s, "by_category": {"listing": {"score": s}}}]}
        for v, s in ((champion, 0.4), (challenger, 1.0))
    ]
    trend = [{"suite": "shell", "scores": [{"version": v["version"], "score": v["suites"][0]["score"]} for v in versions]}]
    report = EvalReport.objects.create(task="commands", versions=versions, trend=trend, summary="two versions")
    page = staff_client.get(f"/admin/abtesting/evalreport/{report.pk}/change/").content.decode()
    assert "Suite shell: score per version" in page
    assert 'data-label="listing"' in page  # the category's line beside the overall one
    assert 'data-label="overall"' in page

    page = staff_client.get(f"/admin/registry/modelversion/{champion.pk}/change/").content.decode()
    assert f"{champion.name}: latency" in page  # the seeded traffic of the champion, per day
    assert "mean feedback (1-5)" in page

    CurationRun.objects.create(status="succeeded", counts={"read": 100, "eligible": 60, "examples_created": 50})
    CurationRun.objects.create(status="succeeded", counts={"read": 120, "eligible": 70, "examples_created": 65})
    page = staff_client.get("/admin/").content.decode()
    curation = page[page.index('id="curation-runs"') :]
    for stage in ("read", "eligible", "examples_created"):
        assert f'data-label="{stage}"' in curation
