"""The remote (vLLM) backend loads versions' LoRA adapters itself: a registration, promotion or
rollback loads the adapter under the version's name from where the server sees it, retiring
unloads it, and a request for a version the server does not list loads it first, once. The
stand-in implements exactly vLLM's documented endpoints (GET /v1/models, POST
/v1/load_lora_adapter, POST /v1/unload_lora_adapter, POST /v1/chat/completions answering 404 for
a name it does not serve), with vLLM's answers and errors."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from curation.models import Dataset
from interactions.models import Interaction
from registry import services
from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from registry.serving import adapters
from training.models import TrainingJob

pytestmark = pytest.mark.django_db
BASE = "org/base-1b"
HI = [{"role": "user", "content": "hi"}]
KEY = "vllm-key"


def _error(status: int, kind: str, message: str, param: str | None = None) -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": kind, "param": param, "code": status}}


class VLLM:
    """What a vLLM server started with --enable-lora, VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and
    --api-key answers. `fail_loads` makes the next loads answer 500."""

    def __init__(self) -> None:
        self.loaded: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self.loads: list[dict] = []
        self.asked: list[str] = []
        self.fail_loads = 0
        self.lock = threading.Lock()

    def answer(self, method: str, path: str, body: dict) -> tuple[int, dict | str]:
        self.calls[f"{method} {path}"] += 1
        with self.lock:
            if (method, path) == ("GET", "/v1/models"):
                return 200, self.models()
            if (method, path) == ("POST", "/v1/load_lora_adapter"):
                return self.load(body)
            if (method, path) == ("POST", "/v1/unload_lora_adapter"):
                return self.unload(body)
        if (method, path) == ("POST", "/v1/chat/completions"):
            return self.chat(body)
        return 404, {"detail": "Not Found"}

    def models(self) -> dict:
        cards = [{"id": BASE, "object": "model", "owned_by": "vllm", "root": BASE, "parent": None}]
        for name, path in self.loaded.items():
            cards.append({"id": name, "object": "model", "owned_by": "vllm", "root": path, "parent": BASE})
        return {"object": "list", "data": cards}

    def load(self, body: dict) -> tuple[int, dict | str]:
        self.loads.append(body)
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return _error(400, "InvalidUserInput", "Both 'lora_name' and 'lora_path' must be provided.")
        if name in self.loaded:
            inplace = "If you want to load the adapter in place, set 'load_inplace' to True."
            message = f"The lora adapter '{name}' has already been loaded. {inplace}"
            return _error(400, "InvalidUserInput", message)
        if self.fail_loads:
            self.fail_loads -= 1
            return _error(500, "InternalServerError", "CUDA out of memory")
        if not (Path(path) / "adapter_config.json").is_file():
            return _error(404, "NotFoundError", f"Loading lora {name} failed: No adapter found for {path}")
        self.loaded[name] = path
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def unload(self, body: dict) -> tuple[int, dict | str]:
        name = body.get("lora_name")
        if name not in self.loaded:
            return _error(404, "NotFoundError", f"The lora adapter '{name}' cannot be found.")
        del self.loaded[name]
        return 200, f"Success: LoRA adapter '{name}' removed successfully."

    def chat(self, body: dict) -> tuple[int, dict]:
        model = body["model"]
        self.asked.append(model)
        if model != BASE and model not in self.loaded:
            return _error(404, "NotFoundError", f"The model `{model}` does not exist.", "model")
        message = {"role": "assistant", "content": f"{model} says hi"}
        usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        return 200, {
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message}],
            "usage": usage,
        }


@pytest.fixture
def vllm(settings, tmp_path):
    """The stand-in on a real port; ARTIFACTS_DIR is mounted on the 'server' under another path."""
    server_state = VLLM()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                status, answer = 401, {"error": "Unauthorized"}
            else:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                status, answer = server_state.answer(method, self.path, body)
            text = answer if isinstance(answer, str) else json.dumps(answer)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
            self.end_headers()
            self.wfile.write(text.encode())

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "volume").mkdir()
    (tmp_path / "volume" / "lp").symlink_to(tmp_path / "artifacts")  # the same files, elsewhere
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.SERVING_BACKEND, settings.SERVING_REMOTE_API_KEY = "remote", KEY
    settings.SERVING_REMOTE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.SERVING_REMOTE_ADAPTER_ROOT = str(tmp_path / "volume" / "lp")
    settings.SERVING_REMOTE_BASE_MODEL, settings.SERVING_REMOTE_LIST_SECONDS = "", 60
    settings.BASE_MODEL = BASE
    server_state.root = tmp_path / "volume" / "lp"
    yield server_state
    server.shutdown()
    server.server_close()


def adapter_version(settings, number: int, *, task: str = "support", **fields) -> ModelVersion:
    """A version whose adapter files sit under ARTIFACTS_DIR, as a training job leaves them."""
    adapter = Path(settings.ARTIFACTS_DIR) / "jobs" / f"job-{number}" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 16}))
    name = f"base-1b-{task}-v{number}"
    return ModelVersion.objects.create(
        task=task,
        name=name,
        number=number,
        base_model=BASE,
        adapter_path=str(adapter),
        **fields,
    )


def where_the_server_sees(vllm, version: ModelVersion) -> str:
    return str(vllm.root / "jobs" / f"job-{version.number}" / "adapter")


@pytest.fixture
def commits(django_capture_on_commit_callbacks):
    """Run what a change queues after its commit (the queue is synchronous in the tests)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def ingest(make_api):
    return make_api(scopes=("ingest",))


def chat(ingest, model: str):
    body = {"model": model, "messages": HI, "max_tokens": 3}
    return ingest.post("/v1/chat/completions", body, format="json")


def test_a_registered_job_loads_its_adapter_under_the_version_name(settings, vllm, commits):
    dataset = Dataset.objects.create(task="support", name="d", version=1, kind="sft", status="frozen")
    adapter = adapter_version(settings, 1).adapter_path
    ModelVersion.objects.all().delete()
    job = TrainingJob.objects.create(
        task="support",
        dataset=dataset,
        base_model=BASE,
        method="sft",
        status="succeeded",
        adapter_path=adapter,
    )
    with commits():
        version = services.version_register_job(job=job)
    assert vllm.loads == [{"lora_name": version.name, "lora_path": where_the_server_sees(vllm, version)}]
    assert version.name in vllm.loaded
    assert vllm.calls["POST /v1/load_lora_adapter"] == 1, "the base (v0) registered with it loads nothing"


def test_promote_loads_retire_unloads_and_the_server_lists_what_serves(settings, vllm, commits):
    first = adapter_version(settings, 1, status="approved")
    second = adapter_version(settings, 2, status="approved")
    with commits():
        services.version_promote(version=first, actor="staff")
        services.version_promote(version=second, actor="staff")
    assert set(vllm.loaded) == {first.name, second.name}
    assert vllm.loaded[second.name] == where_the_server_sees(vllm, second)
    with commits():
        services.version_retire(version=first, actor="staff", reason="old")
    assert set(vllm.loaded) == {second.name}
    listed = {m["id"] for m in vllm.models()["data"]}
    assert listed == {BASE, second.name}
    assert ActiveModel.objects.get(task="support").version == second


def test_a_version_tainted_by_an_erasure_is_unloaded(settings, vllm, commits):
    dataset = Dataset.objects.create(task="support", name="d", version=1, kind="sft", status="frozen")
    version = adapter_version(settings, 1, status="approved", dataset=dataset)
    with commits():
        services.version_promote(version=version, actor="staff")
    assert version.name in vllm.loaded
    with commits():
        services.versions_taint(dataset_ids=[dataset.pk], reason="erasure 7")
    assert vllm.loaded == {}


def test_a_rollback_loads_the_version_it_returns_to(settings, vllm, commits):
    first = adapter_version(settings, 1, status="approved")
    second = adapter_version(settings, 2, status="approved")
    services.version_promote(version=first, actor="staff")  # no callbacks run: nothing is loaded
    services.version_promote(version=second, actor="staff")
    with commits():
        services.version_rollback(task="support", actor="staff", reason="worse")
    assert set(vllm.loaded) == {first.name}


def test_a_failing_server_never_undoes_a_promotion_and_the_first_request_loads_it(
    settings,
    vllm,
    ingest,
    caplog,
    commits,
):
    version = adapter_version(settings, 1, status="approved")
    vllm.fail_loads = 1
    with commits():
        services.version_promote(version=version, actor="staff", reason="go")
    assert ActiveModel.objects.get(task="support").version == version
    assert LifecycleEvent.objects.filter(action="promote", to_version=version).exists()
    assert vllm.loaded == {}
    assert "remote adapter after promote" in caplog.text
    assert "CUDA out of memory" in caplog.text
    answer = chat(ingest, "support")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["model"] == version.name
    assert answer.json()["choices"][0]["message"]["content"] == f"{version.name} says hi"
    assert vllm.asked == [version.name]
    assert vllm.loaded == {version.name: where_the_server_sees(vllm, version)}
    assert Interaction.objects.get().model_version == version.name
    assert chat(ingest, version.name).status_code == 200
    assert vllm.calls["POST /v1/load_lora_adapter"] == 2, "one failed load, one on the first request"
    assert vllm.calls["GET /v1/models"] == 1, "the list is cached for SERVING_REMOTE_LIST_SECONDS"


def test_concurrent_first_requests_load_once_and_already_loaded_is_success(settings, vllm):
    version = adapter_version(settings, 1, status="approved")
    names: list[str] = []
    threads = [threading.Thread(target=lambda: names.append(adapters.model_for(version))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert names == [version.name] * 8
    assert vllm.calls["POST /v1/load_lora_adapter"] == 1
    # another process (its own list) loads the same version: vLLM answers 400 "already loaded"
    assert adapters.adapter_load(version) == f"{version.name}: already loaded"


def test_a_server_that_lost_an_adapter_gets_it_again_once(settings, vllm, ingest):
    version = adapter_version(settings, 1, status="approved")
    services.version_promote(version=version, actor="staff")
    assert chat(ingest, "support").status_code == 200
    vllm.loaded.clear()  # restarted since this process listed it
    answer = chat(ingest, "support")
    assert answer.status_code == 200, answer.json()
    assert vllm.asked == [version.name] * 3  # answered, 404, answered after loading again
    assert vllm.calls["POST /v1/load_lora_adapter"] == 2


def test_the_base_model_is_asked_for_by_the_servers_name_and_loads_nothing(settings, vllm, ingest):
    services.version_promote(version=services.version_base(task="support", base_model=BASE), actor="staff")
    answer = chat(ingest, "support")
    assert answer.status_code == 200, answer.json()
    assert (answer.json()["model"], vllm.asked) == ("base-1b-support-v0", [BASE])
    settings.SERVING_REMOTE_BASE_MODEL = "served-as"
    assert chat(ingest, "support").status_code == 409
    assert vllm.asked[-1] == "served-as"
    assert vllm.calls["POST /v1/load_lora_adapter"] == 0


def test_an_adapter_outside_artifacts_dir_is_refused_with_the_reason(settings, vllm, ingest, tmp_path):
    version = adapter_version(settings, 1, status="approved")
    settings.ARTIFACTS_DIR = tmp_path / "elsewhere"
    services.version_promote(version=version, actor="staff")
    refused = chat(ingest, "support")
    assert refused.status_code == 409
    assert "is not under ARTIFACTS_DIR" in refused.json()["error"]["message"]
    assert vllm.loads == []


def test_a_load_the_server_refuses_is_a_409_naming_its_answer(settings, vllm, ingest):
    version = adapter_version(settings, 1, status="approved")
    (Path(version.adapter_path) / "adapter_config.json").unlink()
    services.version_promote(version=version, actor="staff")
    refused = chat(ingest, "support")
    assert refused.status_code == 409
    assert "answered 404" in refused.json()["error"]["message"]
    assert "No adapter found" in refused.json()["error"]["message"]
    assert not Interaction.objects.exists()


def test_without_an_adapter_root_the_server_is_trusted_to_know_each_version(settings, vllm, ingest, commits):
    settings.SERVING_REMOTE_ADAPTER_ROOT = ""
    version = adapter_version(settings, 1, status="approved")
    with commits() as callbacks:
        services.version_promote(version=version, actor="staff")
    assert callbacks == []
    assert chat(ingest, "support").status_code == 409  # this stand-in has not loaded it
    assert vllm.asked == [version.name]
    assert vllm.calls["GET /v1/models"] == vllm.calls["POST /v1/load_lora_adapter"] == 0
