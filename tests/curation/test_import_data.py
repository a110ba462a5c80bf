"""import_data: every format in, through the curation path, idempotent, bad lines reported."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from curation.models import ImportRun, TrainingExample
from curation.services import dataset_freeze_new
from interactions.models import Candidate, Feedback, Interaction
from tests.curation.test_pipeline import curate

pytestmark = pytest.mark.django_db

HAND_WRITTEN = {
    "messages": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
                              {"role": "assistant", "content": "Paris."}]},
    "openai": {"input": {"messages": [{"role": "user", "content": "Largest planet?"}]},
               "preferred_output": [{"role": "assistant", "content": "Jupiter."}],
               "non_preferred_output": [{"role": "assistant", "content": "Mars."}]},
    "alpaca": {"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour"},
    "sharegpt": {"conversations": [{"from": "human", "value": "Two plus two?"}, {"from": "gpt", "value": "Four."}]},
    "prompt_completion": {"prompt": "Colour of the sky?", "completion": "Blue."},
    "dpo": {"prompt": "Best sorting for nearly sorted data?", "chosen": "Insertion sort.", "rejected": "Bogosort."},
    "kto": {"prompt": [{"role": "user", "content": "Is the earth flat?"}],
            "completion": [{"role": "assistant", "content": "Yes, totally flat."}], "label": False},
}  # fmt: skip


def write(path, records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return str(path)


def run_import(path, *args) -> tuple[ImportRun, str]:
    out = io.StringIO()
    call_command("import_data", path, *args, stdout=out, stderr=io.StringIO())
    return ImportRun.objects.order_by("-pk").first(), out.getvalue()


def examples(task: str, kind: str) -> set[tuple]:
    rows = TrainingExample.objects.filter(task=task, kind=kind, duplicate_of__isnull=True)
    return {(json.dumps(e.prompt), e.target, e.rejected, e.label) for e in rows}


def test_each_hand_written_format_becomes_an_interaction_with_its_feedback(tmp_path):
    run, _ = run_import(write(tmp_path / "hand.jsonl", HAND_WRITTEN.values()), "--task", "hand")
    assert run.status == "succeeded"
    assert run.counts["created"] == len(HAND_WRITTEN)
    assert "refused" not in run.counts
    assert {k: run.counts[f"format:{k}"] for k in HAND_WRITTEN} == dict.fromkeys(HAND_WRITTEN, 1)
    paris = Interaction.objects.get(task="hand", output_text="Paris.")
    assert paris.messages[0] == {"role": "system", "content": "Be brief."}
    assert list(paris.feedback.values_list("kind", "thumb", "source")) == [("thumb", "up", "staff")]
    alpaca = Interaction.objects.get(task="hand", output_text="Bonjour")
    assert alpaca.messages == [{"role": "user", "content": "Translate to French\n\nGood morning"}]
    jupiter = Interaction.objects.get(task="hand", output_text="Jupiter.")
    choice = jupiter.feedback.get()
    assert choice.kind == "choice"
    assert choice.candidate.text == "Jupiter."
    assert choice.candidate.is_chosen
    flat = Interaction.objects.get(task="hand", output_text="Yes, totally flat.")
    assert flat.feedback.get().thumb == "down"
    curate(task="hand")
    assert ("[]", "", "", None) not in examples("hand", "sft")
    assert {t for _, t, _, _ in examples("hand", "sft")} == {"Paris.", "Bonjour", "Four.", "Blue."}
    assert {(t, r) for _, t, r, _ in examples("hand", "preference")} == {
        ("Jupiter.", "Mars."),
        ("Insertion sort.", "Bogosort."),
    }
    assert ("Yes, totally flat.", False) in {(t, label) for _, t, _, label in examples("hand", "binary")}


def test_importing_the_same_file_twice_adds_nothing(tmp_path):
    path = write(tmp_path / "hand.jsonl", HAND_WRITTEN.values())
    run_import(path, "--task", "hand")
    counts = (Interaction.objects.count(), Feedback.objects.count(), Candidate.objects.count())
    again, _ = run_import(path, "--task", "hand")
    assert again.counts["replayed"] == len(HAND_WRITTEN)
    assert "created" not in again.counts
    assert (Interaction.objects.count(), Feedback.objects.count(), Candidate.objects.count()) == counts


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_is_stored(tmp_path):
    records = [
        HAND_WRITTEN["messages"],
        "{not json",
        {"messages": [{"role": "user", "content": "no answer"}]},
        {"unknown": "shape"},
        "",
        {"prompt": "same?", "chosen": "yes", "rejected": "yes"},
        {"prompt": "x" * 10, "completion": "\u0000 control"},
        HAND_WRITTEN["dpo"],
        HAND_WRITTEN["messages"],
    ]
    run, out = run_import(write(tmp_path / "bad.jsonl", records), "--task", "bad")
    refused = {r["line"]: r["reason"] for r in run.refused}
    assert set(refused) == {2, 3, 4, 6, 7}
    assert "Not JSON" in refused[2]
    assert "assistant" in refused[3]
    assert "No known format" in refused[4]
    assert "same answer" in refused[6]
    assert "output_text" in refused[7]
    assert run.counts["created"] == 2
    assert run.counts["duplicate"] == 1
    assert run.counts["refused"] == 5
    assert "line 2: refused: Not JSON" in out
    assert Interaction.objects.filter(task="bad").count() == 2
    assert all(i.feedback.count() == 1 for i in Interaction.objects.filter(task="bad"))  # never half a record


def test_a_dry_run_reports_and_stores_nothing(tmp_path):
    path = write(tmp_path / "hand.jsonl", [*HAND_WRITTEN.values(), "[1, 2]"])
    run, out = run_import(path, "--task", "hand", "--dry-run")
    assert run.counts["created"] == len(HAND_WRITTEN)
    assert run.refused == [{"line": 8, "reason": "A record must be a JSON object."}]
    assert "dry run, nothing stored" in out
    assert "line 8: refused" in out
    assert Interaction.objects.count() == 0
    assert Feedback.objects.count() == 0
    run_import(path, "--task", "hand")
    dry_again, _ = run_import(path, "--task", "hand", "--dry-run")
    assert dry_again.counts["replayed"] == len(HAND_WRITTEN)


def test_a_forced_format_refuses_records_of_another_and_user_source_is_kept(tmp_path):
    path = write(tmp_path / "mixed.jsonl", [HAND_WRITTEN["alpaca"], HAND_WRITTEN["messages"]])
    run, _ = run_import(path, "--task", "forced", "--format", "messages", "--source", "user")
    assert [r["line"] for r in run.refused] == [1]
    assert Feedback.objects.get(interaction__task="forced").source == "user"


def test_an_unknown_task_slug_is_refused_in_one_line(tmp_path):
    with pytest.raises(CommandError, match="task"):
        run_import(write(tmp_path / "x.jsonl", [HAND_WRITTEN["messages"]]), "--task", "Not A Slug")


def _export(dataset, fmt, path) -> str:
    call_command(
        "export_dataset",
        str(dataset.pk),
        "--format",
        fmt,
        "--split",
        "all",
        "--out",
        str(path),
        stderr=io.StringIO(),
    )
    return str(path)


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [("sft", "messages"), ("sft", "alpaca"), ("sft", "sharegpt"), ("preference", "dpo"), ("binary", "kto")],
)
def test_a_dataset_exported_then_imported_curates_and_freezes_to_the_same_examples(mix, tmp_path, kind, fmt):
    curate()
    original = dataset_freeze_new(task="support", kind=kind, min_tier="bronze")
    path = _export(original, fmt, tmp_path / f"{fmt}.jsonl")
    run, _ = run_import(path, "--task", "copy")
    assert run.counts.get("refused", 0) == 0, run.refused
    curate(task="copy")
    copy = dataset_freeze_new(task="copy", kind=kind, min_tier="bronze")

    def items(dataset):
        return sorted((json.dumps(i.prompt), i.target, i.rejected, i.label) for i in dataset.items.all())

    assert items(copy) == items(original)


def test_prompt_completion_exports_import_as_one_user_turn(mix, tmp_path):
    curate()
    original = dataset_freeze_new(task="support", kind="sft", min_tier="bronze")
    run, _ = run_import(_export(original, "prompt_completion", tmp_path / "pc.jsonl"), "--task", "copy")
    assert run.counts["created"] == original.stats["count"]
    targets = sorted(original.items.values_list("target", flat=True))
    assert sorted(Interaction.objects.filter(task="copy").values_list("output_text", flat=True)) == targets


@pytest.mark.django_db(transaction=True)
def test_many_chunks_outside_a_transaction_lose_and_double_nothing(tmp_path, monkeypatch):
    """Outside a test transaction (as the worker runs it), in chunks of 7: bad lines, repeats
    across chunks and every record's feedback come out as in one pass."""
    from curation.importers import files

    monkeypatch.setattr(files, "CHUNK", 7)
    records = []
    for i in range(60):
        records.append({"prompt": f"Question {i}?", "completion": f"Answer {i}."})
        if i % 9 == 4:
            records.append("{not json")
        if i % 13 == 5 and i > 20:
            records.append({"prompt": f"Question {i - 20}?", "completion": f"Answer {i - 20}."})  # seen chunks ago
    path = write(tmp_path / "many.jsonl", records)
    run, _ = run_import(path, "--task", "threaded")
    assert run.status == "succeeded", run.error
    bad = [n for n, r in enumerate(records, start=1) if r == "{not json"]
    assert sorted(r["line"] for r in run.refused) == bad
    assert (run.counts["created"], run.counts["refused"]) == (60, len(bad))
    assert run.counts["replayed"] == 3
    stored = Interaction.objects.filter(task="threaded")
    assert stored.count() == 60
    assert Feedback.objects.filter(interaction__task="threaded").count() == 60
    again, _ = run_import(path, "--task", "threaded")
    assert again.counts.get("created", 0) == 0
    assert stored.count() == 60


@pytest.mark.skipif(connection.vendor != "postgresql", reason="on SQLite (one writer) an import runs in one process")
@pytest.mark.django_db(transaction=True)
def test_a_file_of_many_spans_is_imported_by_worker_processes_as_by_one(tmp_path, monkeypatch, settings):
    """Spans of 10 lines in 3 processes: the same counts, the same refused lines (numbered in the
    whole file), the same rows as one process; repeats across spans are replays; again: nothing."""
    from curation.importers import files

    monkeypatch.setattr(files, "SPAN_LINES", 10)
    monkeypatch.setattr(files, "CHUNK", 4)
    records = []
    for i in range(90):
        records.append({"prompt": f"Question {i}?", "completion": f"Answer {i}."})
        if i % 11 == 3:
            records.append("{not json")
        if i % 17 == 8:
            records.append("")  # a blank line still counts in the numbering
        if i % 13 == 5 and i > 20:
            records.append({"prompt": f"Question {i - 20}?", "completion": f"Answer {i - 20}."})  # spans ago
    path = write(tmp_path / "spans.jsonl", records)

    def imported(task: str, workers: int) -> tuple[ImportRun, list[tuple]]:
        settings.IMPORT_WORKERS = workers
        run, _ = run_import(path, "--task", task)
        assert run.status == "succeeded", run.error
        rows = Interaction.objects.filter(task=task).values_list("input_text", "output_text", "feedback__thumb")
        return run, sorted(rows)

    settings.IMPORT_WORKERS = 3
    dry_many, _ = run_import(path, "--task", "many", "--dry-run")
    settings.IMPORT_WORKERS = 1
    dry_one, _ = run_import(path, "--task", "many", "--dry-run")
    assert (dry_many.counts, dry_many.refused) == (dry_one.counts, dry_one.refused)
    assert "worker processes" in dry_many.log_tail
    assert not Interaction.objects.filter(task="many").exists()
    one, rows_one = imported("one", 1)
    many, rows_many = imported("many", 3)
    assert "worker processes" not in one.log_tail
    assert re.search(r"imported by [23] worker processes", many.log_tail), many.log_tail
    bad = [n for n, r in enumerate(records, start=1) if r == "{not json"]
    assert [r["line"] for r in many.refused] == bad == [r["line"] for r in one.refused]
    assert many.counts == one.counts
    assert (many.counts["created"], many.counts["replayed"], many.counts["read"]) == (90, 5, 90 + 5 + len(bad))
    assert rows_many == rows_one
    assert len(rows_many) == 90
    assert {r[2] for r in rows_many} == {"up"}
    again, _ = run_import(path, "--task", "many")
    assert (again.counts.get("created", 0), again.counts["replayed"]) == (0, 95)
    assert Interaction.objects.filter(task="many").count() == 90


@pytest.mark.skipif(connection.vendor != "postgresql", reason="on SQLite (one writer) an import runs in one process")
@pytest.mark.django_db(transaction=True)
def test_a_cancelled_import_stops_its_workers_and_leaves_whole_records(tmp_path, monkeypatch, settings):
    import multiprocessing

    from curation.importers import files, import_client, import_run_create, import_run_execute

    monkeypatch.setattr(files, "SPAN_LINES", 10)
    monkeypatch.setattr(files, "CHUNK", 5)
    settings.IMPORT_WORKERS = 2
    path = write(tmp_path / "long.jsonl", [{"prompt": f"Q{i}?", "completion": f"A{i}."} for i in range(400)])
    run = import_run_create(client=import_client(), task="cancelled", path=path)
    ImportRun.objects.filter(pk=run.pk).update(cancel_requested=True)  # seen at the 10th span's report
    run = import_run_execute(run_id=run.pk)
    assert run.status == "cancelled", run.log_tail
    assert not multiprocessing.active_children()
    stored = Interaction.objects.filter(task="cancelled")
    assert 100 <= stored.count() < 400
    assert Feedback.objects.filter(interaction__task="cancelled").count() == stored.count()


def test_messages_in_other_shapes_are_read_into_plain_role_and_content():
    from curation.importers import formats

    plain = {"role": "user", "content": "Hi?"}
    parts = {"role": "user", "name": "ana", "content": [{"type": "text", "text": "Hi"}, {"type": "image_url"}]}
    answer = {"role": "assistant", "content": "Hello."}
    assert formats.parse({"messages": [plain, answer]}) == ("messages", formats.Parsed("sft", [plain], "Hello."))
    _name, parsed = formats.parse({"messages": [parts, answer]})
    assert parsed.prompt == [{"role": "user", "content": "Hi"}]
    with pytest.raises(formats.RecordError, match=r"messages\[0\]: role"):
        formats.parse({"messages": [{"role": "robot", "content": "x"}, answer]})
    with pytest.raises(formats.RecordError, match="answer is empty"):
        formats.parse({"messages": [plain, {"role": "assistant", "content": " "}]})
