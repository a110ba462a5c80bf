"""Schedules: when a newly written schedule first fires, and running any schedule now
(`manage.py run_schedule`, the admin's "Run now" on django-q2's schedules)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from learning_platform.schedules import SCHEDULES, ScheduleSpec, first_run

WEDNESDAY = datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule_type", "hour", "now", "expected"),
    [
        ("D", 2, WEDNESDAY, datetime(2026, 12, 3, 2, 0)),
        ("D", 16, WEDNESDAY, datetime(2026, 12, 2, 16, 0)),
        ("W", 3, WEDNESDAY, datetime(2026, 12, 7, 3, 0)),
        ("W", 3, datetime(2026, 12, 7, 3, 0, tzinfo=UTC), datetime(2026, 12, 14, 3, 0)),
        ("W", 3, datetime(2026, 12, 7, 2, 59, tzinfo=UTC), datetime(2026, 12, 7, 3, 0)),
        ("M", 5, WEDNESDAY, datetime(2027, 1, 1, 5, 0)),
        ("M", 5, datetime(2026, 11, 1, 4, 0, tzinfo=UTC), datetime(2026, 11, 1, 5, 0)),
        ("H", 3, WEDNESDAY, datetime(2026, 12, 2, 15, 0)),
    ],
)
def test_a_new_schedule_first_fires_at_the_next_boundary_of_its_period(schedule_type, hour, now, expected):
    spec = ScheduleSpec(name="s", func="f", schedule_type=schedule_type, hour=hour)
    assert first_run(spec, now) == expected.replace(tzinfo=UTC)
    assert first_run(ScheduleSpec(name="s", func="f", schedule_type="I", minutes=5), now) == now + timezone.timedelta(minutes=5)


@pytest.mark.django_db
def test_setup_schedules_plans_nothing_for_now_and_keeps_a_planned_run():
    before = timezone.now()
    call_command("setup_schedules", stdout=io.StringIO())
    runs = dict(Schedule.objects.values_list("name", "next_run"))
    assert all(run > before for run in runs.values()), "nothing fires when the worker first starts"
    weekly = runs["weekly-training"]
    assert (weekly.weekday(), weekly.hour, weekly.minute) == (0, 3, 0)
    assert (runs["daily-curation"].hour, runs["monthly-evaluation-reports"].day) == (2, 1)
    Schedule.objects.filter(name="weekly-training").update(next_run=weekly.replace(year=2030))
    out = io.StringIO()
    call_command("setup_schedules", stdout=out)
    assert Schedule.objects.get(name="weekly-training").next_run.year == 2030, "an already planned run is kept"
    assert "updated schedule weekly-training (next run 2030-" in out.getvalue()
    Schedule.objects.filter(name="daily-curation").update(next_run=before, task=None)  # written "now" by an older version
    call_command("setup_schedules", stdout=io.StringIO())
    assert Schedule.objects.get(name="daily-curation").next_run == runs["daily-curation"], "never ran: planned again"


@pytest.mark.django_db
def test_run_schedule_lists_runs_and_refuses_unknown_names():
    out = io.StringIO()
    call_command("run_schedule", "--list", stdout=out)
    assert out.getvalue().splitlines()[0] == f"{SCHEDULES[0].name}: {SCHEDULES[0].description}"
    names = ", ".join(spec.name for spec in SCHEDULES)
    with pytest.raises(CommandError) as refused:
        call_command("run_schedule", "weekly-trainnig")
    assert str(refused.value) == f"No schedule named 'weekly-trainnig'; the schedules are: {names}."
    with pytest.raises(CommandError, match=r"^Name a schedule: purge-client-context, "):
        call_command("run_schedule")
    out = io.StringIO()
    call_command("run_schedule", "weekly-training", stdout=out)
    assert out.getvalue() == "no task has curated examples or a training policy\n"


@pytest.mark.django_db
def test_the_admin_runs_a_schedule_now_and_says_what_it_did(client):
    client.force_login(User.objects.create_superuser("staff", "", "pw"))
    call_command("setup_schedules", stdout=io.StringIO())
    custom = Schedule.objects.create(name="custom", func="math.floor", args="2.5", schedule_type="D")
    weekly = Schedule.objects.get(name="weekly-training")
    listing = client.get("/admin/django_q/schedule/")
    assert listing.status_code == 200
    assert b"Run now" in listing.content
    response = client.post("/admin/django_q/schedule/", {"action": "run_now", "_selected_action": [weekly.pk, custom.pk]}, follow=True)
    assert [message.message for message in response.context["messages"]] == [
        "custom: 2",
        "weekly-training: no task has curated examples or a training policy",
    ]
    assert Schedule.objects.get(pk=weekly.pk).next_run == weekly.next_run
