"""export_model: adapter, merged (loads with no peft) and ollama (a Modelfile that parses); a
tainted version is refused."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curation.models import TrainingExample
from registry.models import ModelVersion
from tests.training.conftest import make_examples

pytestmark = pytest.mark.django_db
PROMPT = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "create file 7"}]


@pytest.fixture(scope="session")
def adapter_dir(base_model_dir, tmp_path_factory):
    """A LoRA adapter with random (non-zero) weights: merging it changes the logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(base_model_dir))
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(model, config).save_pretrained(out)
    (out / "training_meta.json").write_text(json.dumps({"recipe": {"method": "sft", "lora_r": 8}, "versions": {"peft": "x"}}))
    return out


@pytest.fixture
def version(training_settings, base_model_dir, adapter_dir):
    from curation.services import dataset_freeze_new

    make_examples(
        "sft",
        [{"prompt": f"create file {i}", "target": '{"action": "create"}'} for i in range(3)],
        task="commands",
    )
    TrainingExample.objects.update(prompt=PROMPT)  # a system turn: the Modelfile's SYSTEM
    dataset = dataset_freeze_new(task="commands", kind="sft", min_tier="bronze", eval_ratio=0.0)
    return ModelVersion.objects.create(
        task="commands", name="tiny-commands-v1", number=1, base_model=str(base_model_dir), adapter_path=str(adapter_dir),
        dataset=dataset, metrics={"eval_loss": 0.5},
    )  # fmt: skip


def export(version, fmt, out) -> Path:
    call_command(
        "export_model",
        version.name,
        "--format",
        fmt,
        "--out",
        str(out),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    return out


def test_the_adapter_export_holds_the_adapter_its_lineage_and_a_card(version, tmp_path):
    out = export(version, "adapter", tmp_path / "adapter")
    assert {"adapter_config.json", "adapter_model.safetensors", "training_meta.json", "README.md"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "training_meta.json").read_text())
    assert meta["version"] == "tiny-commands-v1"
    assert meta["recipe"]["lora_r"] == 8
    assert meta["dataset"]["manifest_hash"] == version.dataset.manifest_hash
    assert meta["lineage"]["ancestry"][0]["name"] == version.name
    card = (out / "README.md").read_text()
    for needle in (version.base_model, version.dataset.manifest_hash, "eval_loss", "lora_r", "transformers"):
        assert needle in card


NO_PEFT = r"""
import json, sys
sys.modules["peft"] = None  # `import peft` raises ImportError from here on
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
path, prompt = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
with torch.no_grad():
    logits = model(ids).logits[0, -1].tolist()
    greedy = model.generate(ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1]:].tolist()
try:
    import peft  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
print(json.dumps({"logits": logits, "greedy": greedy, "peft_blocked": blocked}))
"""


def _reference(base_dir, adapter_dir, prompt):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits[0, -1]
        greedy = model.generate(input_ids=ids, max_new_tokens=12, do_sample=False)[0, ids.shape[1] :].tolist()
    return logits, greedy


@pytest.mark.slow
def test_the_merged_export_loads_without_peft_and_answers_as_base_plus_adapter(version, base_model_dir, adapter_dir, tmp_path):
    import torch

    out = export(version, "merged", tmp_path / "merged")
    assert (out / "model.safetensors").exists()
    assert (out / "tokenizer_config.json").exists()
    assert "adapter_config.json" not in {p.name for p in out.iterdir()}
    assert json.loads((out / "tokenizer_config.json").read_text()).get("chat_template") or (out / "chat_template.jinja").exists()
    done = subprocess.run(
        [sys.executable, "-c", NO_PEFT, str(out), json.dumps(PROMPT)],
        capture_output=True,
        text=True,
        check=True,
    )
    merged = json.loads(done.stdout.strip().splitlines()[-1])
    assert merged["peft_blocked"]
    logits, greedy = _reference(base_model_dir, adapter_dir, PROMPT)
    assert torch.allclose(torch.tensor(merged["logits"]), logits, atol=1e-4, rtol=1e-4)
    assert merged["greedy"] == greedy
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(base_model_dir))
    with torch.no_grad():
        ids = torch.tensor([[1, 2, 3]])
        assert not torch.allclose(base(ids).logits, AutoModelForCausalLM.from_pretrained(str(out))(ids).logits)  # the adapter mattered


# --- A parser for Ollama's Modelfile syntax (docs/modelfile.md) -----------------------------
INSTRUCTIONS = {"FROM", "PARAMETER", "TEMPLATE", "SYSTEM", "ADAPTER", "LICENSE", "MESSAGE", "REQUIRES"}
PARAMETERS = {
    "num_ctx": int, "repeat_last_n": int, "repeat_penalty": float, "temperature": float, "seed": int, "stop": str,
    "num_predict": int, "top_k": int, "top_p": float, "min_p": float,
}  # fmt: skip


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """[(INSTRUCTION, argument)]; raises ValueError on what `ollama create` would refuse."""
    commands, rest = [], text
    while rest:
        line, _, after = rest.partition("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            rest = after
            continue
        name, _, argument = line.strip().partition(" ")
        if name.upper() not in INSTRUCTIONS:
            raise ValueError(f"unknown instruction {name!r}")
        argument = argument.strip()
        if argument.startswith('"""'):
            body = argument[3:] + "\n" + after
            end = body.find('"""')
            if end < 0:
                raise ValueError(f"{name}: unterminated triple quotes")
            argument, rest = body[:end], body[end + 3 :].partition("\n")[2]
        else:
            rest = after
        commands.append((name.upper(), argument))
    if not commands or commands[0][0] != "FROM" or sum(c == "FROM" for c, _ in commands) != 1:
        raise ValueError("exactly one FROM, first")
    for command, argument in commands:
        if command == "PARAMETER":
            key, _, value = argument.partition(" ")
            PARAMETERS[key](json.loads(value) if value.startswith('"') else value)
    return commands


def check_go_template(template: str) -> None:
    """Actions balanced: every if/range has its end, and only known fields are used."""
    depth = 0
    for action in re.findall(r"{{-?\s*(.*?)\s*-?}}", template):
        word = action.split(" ")[0]
        if word in ("if", "range", "with"):
            depth += 1
        elif word == "end":
            depth -= 1
        elif word not in ("else",) and not action.startswith(('"', ".Content", ".Role", ".System", ".Prompt", ".Response")):
            raise ValueError(f"unknown action {action!r}")
        assert depth >= 0
    assert depth == 0


@pytest.mark.slow
def test_the_ollama_export_has_a_modelfile_that_parses_and_names_files_that_exist(version, tmp_path):
    from transformers import AutoTokenizer

    out = export(version, "ollama", tmp_path / "ollama")
    commands = parse_modelfile((out / "Modelfile").read_text())
    values = dict(commands)
    weights = out / values["FROM"]
    assert (weights / "config.json").exists()
    assert (weights / "model.safetensors").exists()
    check_go_template(values["TEMPLATE"])
    assert values["SYSTEM"] == "Answer in JSON."
    parameters = [shlex.split(argument) for command, argument in commands if command == "PARAMETER"]
    assert ["stop", "<|im_end|>"] in parameters
    assert ["temperature", "0"] in parameters
    # the template says what the chat template says: ChatML around each turn
    tokenizer = AutoTokenizer.from_pretrained(str(weights))
    rendered = tokenizer.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\n" in values["TEMPLATE"]
    assert rendered.endswith("<|im_start|>assistant\n")
    assert values["TEMPLATE"].endswith("<|im_start|>assistant\n")


def test_a_tainted_version_is_refused_with_the_erasure_named(version, tmp_path):
    version.tainted, version.tainted_reason = True, "erasure 42 removed rows of its dataset"
    version.save(update_fields=["tainted", "tainted_reason"])
    with pytest.raises(CommandError, match=r"tainted.*erasure 42"):
        export(version, "adapter", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_api_streams_the_adapter_as_a_tar(version, make_api):
    api = make_api(("admin",))
    response = api.get(f"/api/v1/models/{version.name}/export", {"format": "adapter"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as tar:
        names = set(tar.getnames())
    assert f"{version.name}-adapter/adapter_model.safetensors" in names
    assert f"{version.name}-adapter/README.md" in names


def test_the_api_refuses_a_tainted_version_before_streaming(version, make_api):
    version.tainted, version.tainted_reason = True, "erasure 7"
    version.save(update_fields=["tainted", "tainted_reason"])
    response = make_api(("admin",)).get(f"/api/v1/models/{version.name}/export", {"format": "adapter"})
    assert response.status_code == 409
    assert "erasure 7" in response.json()["detail"]


def test_the_admin_action_exports_the_adapter_and_refuses_a_tainted_one(version, client, django_user_model, training_settings):
    client.force_login(django_user_model.objects.create_superuser("boss", "", "pw"))
    tainted = ModelVersion.objects.create(
        task="commands", name="tiny-commands-v2", number=2, base_model=version.base_model, adapter_path=version.adapter_path,
        tainted=True, tainted_reason="erasure 9",
    )  # fmt: skip
    data = {
        "action": "export_adapter",
        "_selected_action": [version.pk, tainted.pk],
        "index": 0,
        "select_across": 0,
    }
    page = client.post("/admin/registry/modelversion/", data, follow=True).content.decode()
    assert "tiny-commands-v2 is tainted and is never exported: erasure 9" in page
    exported = list((Path(training_settings.ARTIFACTS_DIR) / "exports").iterdir())
    assert [p.name.startswith("tiny-commands-v1-adapter") for p in exported] == [True]
    assert (exported[0] / "adapter_model.safetensors").exists()
