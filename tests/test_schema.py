"""The OpenAPI schema is true: schemathesis drives every operation of a live gunicorn with a fixed
seed and a bounded number of examples, and checks that nothing answers 500 and that every answer
(status, content type, body) is one the schema documents."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from interactions.services import api_client_create, interaction_record
from tests.test_run_platform import ROOT, _database_url, _free_port, _healthy, _wait_for
from tests.training.conftest import base_model_dir  # noqa: F401  (a shared fixture)

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEED, EXAMPLES = "20261201", "12"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_operation_answers_as_the_schema_says(base_model_dir, tmp_path):  # noqa: F811
    client, key = api_client_create(name="schemathesis", scopes=["ingest", "read", "admin"])
    interaction_record(client=client, payload={"task": "support", "input_text": "hello", "output_text": "hi"})
    port = _free_port()
    env = {
        **os.environ, "DATABASE_URL": _database_url(), "DEBUG": "false", "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false", "Q_SYNC": "false", "BASE_MODEL": str(base_model_dir),
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"), "SERVING_MAX_TOKENS": "8", "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "learning_platform.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--timeout", "120"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("wb"), start_new_session=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: _healthy(port), 30), "the web server did not come up"
        st = shutil.which("st", path=str(Path(sys.executable).parent))
        assert st, "schemathesis is not installed (requirements/dev.txt)"
        run = subprocess.run(
            [st, "run", f"http://127.0.0.1:{port}/api/schema/", "--header", f"Authorization: Bearer {key}",
             "--checks", CHECKS, "--seed", SEED, "--max-examples", EXAMPLES, "--workers", "1",
             "--phases", "examples,coverage,fuzzing", "--generation-database", "none", "--no-color",
             "--request-timeout", "60"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        report = run.stdout[-20_000:] + run.stderr[-5_000:]
        assert run.returncode == 0, report
        selected, tested = re.search(r"Selected: (\d+)/(\d+)", report), re.search(r"Tested: (\d+)", report)
        assert selected, report
        assert tested, report
        assert int(tested.group(1)) == int(selected.group(2)) > 30, report
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
