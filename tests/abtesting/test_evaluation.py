from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from abtesting import services
from abtesting.models import CATEGORIES, EvalRun, EvalSuite
from registry.services import version_base
from registry.serving import champion
from tests.test_jobs import (
    child_env,
    heartbeats,
    manage,
    needs_postgres,
    reap_once_stale,
    side_session,
    terminate_backends,
    worker_pid,
)
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


@contextmanager
def model_server(on_request: Callable[[int], None]) -> Iterator[str]:
    """An OpenAI-compatible server standing in for vLLM (outside the platform): it answers "42"
    to every chat completion, once `on_request(number)` returned. Its base URL."""
    numbers = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            on_request(next(numbers))
            body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "42"}}], "usage": {}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _newest_run_id() -> int:
    with side_session() as session:
        return session.execute("SELECT max(id) FROM abtesting_evalrun").fetchone()[0]  # type: ignore[no-any-return]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_evaluate_process_killed_mid_run_is_failed_by_the_reaper():
    version = version_base(task="support", base_model="tiny")
    answering, release = threading.Event(), threading.Event()

    def hold_the_third(number: int) -> None:
        if number == 3:
            answering.set()
            release.wait(60)

    with model_server(hold_the_third) as url:
        env = child_env(SERVING_BACKEND="remote", SERVING_REMOTE_URL=url)
        process = subprocess.Popen(manage("evaluate", version.name), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            assert answering.wait(60), "the evaluation never asked the model"
            run = EvalRun.objects.get()
            assert heartbeats(EvalRun, run.pk, count=3), "the heart beats while the model answers"
            assert worker_pid(run) == process.pid
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        finally:
            release.set()
            process.kill()
    run.refresh_from_db()
    assert (run.status, run.progress) == ("running", 12.5), "2 of 16 cases answered, then the process died"
    assert reap_once_stale(stale_seconds=1) == "eval_run failed: 1"
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("No heartbeat for")
    assert "failed by the reaper" in run.log_tail


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_an_evaluation_survives_its_sessions_being_terminated_while_the_model_answers(settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    version, suite = version_base(task="support", base_model="tiny"), services.suite_default(task="support")
    seen: list[object] = []

    def beat_then_terminate(number: int) -> None:
        if number == 2:
            seen.append(heartbeats(EvalRun, _newest_run_id(), count=3))
            with side_session() as session:
                seen.append(terminate_backends(session))  # every session of the app's, the run's included

    with model_server(beat_then_terminate) as url:
        settings.SERVING_BACKEND, settings.SERVING_REMOTE_URL = "remote", url
        run = services.eval_run(version=version, suite=suite)
    assert seen[0] is True, "the heart beat while the work waited for the model"
    assert seen[1] >= 1
    assert run.status == "succeeded", run.error
    assert len(run.results) == suite.cases.count()
    assert run.attempts == 1
