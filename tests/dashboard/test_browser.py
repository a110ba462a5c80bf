"""The control room in headless Chromium (Debian's chromium driven by Playwright; no browser
download): log in, read the charts and alerts, follow the genealogy, find no delete on the audit,
and watch a running job's progress change without a reload. Screenshots go to var/test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.db import connections

from interactions.models import Interaction, Subject
from interactions.services import subject_erase_by_subject
from tests.dashboard.conftest import curve, seed_loop
from tests.factories import InteractionFactory
from training.models import TrainingJob

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser_page(monkeypatch):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing (requirements/dev.txt)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop in this thread
    # the live server's threads close their connections after each request (else the test database cannot be dropped)
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(10_000)
        yield page, sync_api.expect
        browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_staff_member_reads_and_follows_the_control_room(browser_page, live_server, django_user_model):
    page, expect = browser_page
    seeded = seed_loop()
    django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    page.goto(live_server.url + "/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + "/admin/")

    job = seeded["running"]
    assert page.locator("svg.chart").count() >= 5
    assert page.locator(f"svg#loss-{job.pk} polyline.series").count() == 2  # training loss and eval loss
    assert page.locator(f"svg#loss-{job.pk} circle.point").count() == 3 + 3
    assert page.locator(f"svg#win-{seeded['experiment'].pk} polygon.band").count() == 1
    axis_labels = page.locator("svg.chart text.axis-label").all_text_contents()
    assert {"step", "loss", "trials", "win rate"} <= set(axis_labels)
    alerts = page.locator("#alerts").inner_text()
    assert f"training job {seeded['failed'].pk} failed" in alerts
    assert "stopped by its sample-ratio check" in alerts
    shot(page, "dashboard")

    TrainingJob.objects.filter(pk=job.pk).update(progress=80.0, step=8, loss_curve=curve(8))
    expect(page.locator(f'[data-live-job="{job.pk}"] [data-field="text"]')).to_have_text("running: 80% (step 8 of 10)")
    expect(page.locator(f"svg#loss-{job.pk} circle.point")).to_have_count(8 + 4)  # 8 losses, 4 eval points: redrawn live
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload happened
    shot(page, "dashboard-after-progress")

    tainted = seeded["tainted"]
    node = page.locator("svg#genealogy-commands g.node.tainted")
    assert node.count() == 1
    assert node.locator("rect").get_attribute("stroke") == "#ba2121"
    node.click()
    page.wait_for_url(f"**/admin/registry/modelversion/{tainted.pk}/change/")
    expect(page.locator(".tainted-warning")).to_contain_text("tainted and never serves")
    shot(page, "tainted-version")

    page.goto(f"{live_server.url}/admin/training/trainingjob/{job.pk}/change/")
    expect(page.locator(f"svg#loss-{job.pk}")).to_be_visible()
    assert page.locator(f"svg#loss-{job.pk}").bounding_box()["y"] < 700  # the chart is near the top
    shot(page, "training-job")

    page.goto(f"{live_server.url}/admin/abtesting/experiment/{seeded['experiment'].pk}/change/")
    expect(page.locator("table.trials tr").nth(1)).to_contain_text("truth:")
    shot(page, "experiment")

    interaction = InteractionFactory(task="commands")
    subject = Subject.objects.create(client=interaction.client, user_hash="d" * 64)
    Interaction.objects.filter(pk=interaction.pk).update(subject=subject)
    erasure = subject_erase_by_subject(subject=subject, requested_by="test")
    page.goto(f"{live_server.url}/admin/interactions/erasurerequest/")
    assert page.locator("select[name=action] option[value=delete_selected]").count() == 0
    page.goto(f"{live_server.url}/admin/interactions/erasurerequest/{erasure.pk}/change/")
    assert page.locator("a.deletelink").count() == 0
    assert page.locator("input[name=_save]").count() == 0
    shot(page, "erasure-audit")
