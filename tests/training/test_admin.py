from __future__ import annotations

import pytest
from django.contrib.admin import site
from django.contrib.auth.models import User

from tests.training.conftest import sft_dataset
from training import services
from training.admin import TrainingJobAdmin
from training.models import TrainingJob, TrainingPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("staff", "", "pw"))
    return client


def test_the_job_page_draws_the_loss_curve(staff, training_settings):
    sft_dataset(count=20)
    job = services.job_create(task="commands")
    curve = [{"step": 5, "loss": 3.2}, {"step": 10, "loss": 2.1}, {"step": 10, "eval_loss": 2.3}, {"step": 15, "loss": 1.4}]
    TrainingJob.objects.filter(pk=job.pk).update(loss_curve=curve, step=15, total_steps=30, status="running", eta_seconds=12)
    page = staff.get(f"/admin/training/trainingjob/{job.pk}/change/").content.decode()
    chart, details = page.index('<svg class="chart"'), page.index("Recipe, metrics and raw details")
    assert chart < details < page.index("field-library_versions")  # the chart first, the raw JSON folded below
    assert page.count('<polyline class="series"') == 1  # the training loss; the one eval loss is a point
    assert page.count('<circle class="point"') == 3 + 1
    for label in (">step</text>", ">loss</text>", ">eval loss</text>"):  # axis labels and the legend
        assert label in page
    assert "running: 50% (step 15 of 30, about 12 s left)" in page
    listing = staff.get("/admin/training/trainingjob/").content.decode()
    assert "50% (15/30), ETA 12s" in listing
    job.loss_curve = []
    assert "no loss logged yet" in TrainingJobAdmin(TrainingJob, site).loss_chart(job)


def test_start_cancel_and_resume_from_the_admin(staff, training_settings):
    dataset = sft_dataset(count=20)
    staff.post("/admin/training/trainabledataset/", {"action": "start_training", "_selected_action": [dataset.pk]})
    job = TrainingJob.objects.get()
    assert (job.requested_by, job.status) == ("admin:staff", "queued")
    staff.post("/admin/training/trainingjob/", {"action": "cancel", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "cancelled"
    TrainingJob.objects.filter(pk=job.pk).update(checkpoint=str(training_settings.ARTIFACTS_DIR / "checkpoint-5"))
    staff.post("/admin/training/trainingjob/", {"action": "resume", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "queued"


def test_policies_show_readiness(staff, training_settings):
    TrainingPolicy.objects.create(task="commands", min_examples=30)
    page = staff.get("/admin/training/trainingpolicy/").content.decode()
    assert "examples: 0 of 30 needed" in page
