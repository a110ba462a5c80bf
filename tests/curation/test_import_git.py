"""import_git: a repository built here, with a merge, a bot, a binary file and a secret."""

from __future__ import annotations

import io
import os
import subprocess

import pytest
from django.core.management import CommandError, call_command

from curation.models import ImportRun, TrainingExample
from interactions.models import Interaction
from tests.curation.test_pipeline import curate

pytestmark = pytest.mark.django_db
SECRET = "sk-live-" + "a1B2c3D4e5F6g7H8i9J0k1L2"


class Repo:
    def __init__(self, path) -> None:
        self.path = path
        path.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, author: str = "Ada Lovelace <ada@example.com>") -> str:
        name, email = author[:-1].split(" <")
        env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
        env |= {"GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        done = subprocess.run(["git", "-C", str(self.path), *args], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    def commit(self, message: str, files: dict[str, str | bytes], **kwargs) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, **kwargs)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    r = Repo(tmp_path / "repo")
    r.commit("Add the greeting module", {"greet.py": "def greet(name):\n    return f'Hello {name}'\n"})
    r.commit(
        "Read the API key from settings\n\nAsk grace@example.org before rotating it.",
        {"config.py": f'API_KEY = "{SECRET}"\nOWNER = "grace@example.org"\n'},
    )
    r.commit(
        "Bump lodash",
        {"package-lock.json": '{"lockfileVersion": 3}\n'},
        author="dependabot[bot] <bot@github.com>",
    )
    r.commit(
        "Add the logo and a shout",
        {
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00binary",
            "shout.py": "def shout(s):\n    return s.upper()\n",
        },
    )
    r.commit("Regenerate the lock file", {"poetry.lock": "[[package]]\nname = 'x'\n"})
    r.git("checkout", "-q", "-b", "feature")
    r.commit("Add farewells", {"bye.py": "def bye():\n    return 'Bye'\n"})
    r.git("checkout", "-q", "main")
    r.commit("Add a docstring", {"greet.py": "def greet(name):\n    '''Greet.'''\n    return f'Hello {name}'\n"})
    r.git("merge", "-q", "--no-ff", "feature", "-m", "Merge branch 'feature'")
    return r


def import_git(path, *args) -> ImportRun:
    call_command("import_git", str(path), "--task", "code", *args, stdout=io.StringIO(), stderr=io.StringIO())
    return ImportRun.objects.order_by("-pk").first()


def messages() -> list[str]:
    return sorted(Interaction.objects.filter(task="code").values_list("output_text", flat=True))


def test_it_imports_the_right_commits_scrubbed(repo):
    run = import_git(repo.path)
    assert run.status == "succeeded", run.error
    assert messages() == sorted([
        "Add the greeting module",
        "Read the API key from settings\n\nAsk [EMAIL] before rotating it.",
        "Add the logo and a shout",
        "Add farewells",
        "Add a docstring",
    ])  # fmt: skip
    assert run.counts["skipped:merge"] == 1
    assert run.counts["skipped:bot_author"] == 1
    assert run.counts["skipped:empty_diff"] == 1  # only a lock file
    assert run.counts["skipped:binary_files_left_out"] == 1
    stored = " ".join(str(i.messages) + i.output_text + str(i.metadata) for i in Interaction.objects.all())
    for raw in (
        SECRET,
        "grace@example.org",
        "ada@example.com",
        "Ada Lovelace",
        "logo.png",
        "package-lock",
        "poetry.lock",
    ):
        assert raw not in stored
    shout = Interaction.objects.get(output_text="Add the logo and a shout")
    assert "shout.py" in shout.messages[0]["content"]
    assert shout.feedback.get().thumb == "up"
    curate(task="code")
    assert TrainingExample.objects.filter(task="code", kind="sft").count() == 5


def test_a_second_run_imports_only_new_commits(repo):
    import_git(repo.path)
    again = import_git(repo.path)
    assert again.counts.get("read", 0) == 0
    assert Interaction.objects.filter(task="code").count() == 5
    repo.commit("Handle empty names", {"greet.py": "def greet(name):\n    return f'Hello {name or \"you\"}'\n"})
    third = import_git(repo.path)
    assert third.counts["read"] == 1
    assert third.counts["created"] == 1
    assert "Handle empty names" in messages()


def test_max_commits_takes_the_oldest_and_the_next_run_goes_on(repo):
    first = import_git(repo.path, "--max-commits", "2")
    assert first.counts["read"] == 2
    assert messages() == [
        "Add the greeting module",
        "Read the API key from settings\n\nAsk [EMAIL] before rotating it.",
    ]
    import_git(repo.path)
    assert len(messages()) == 5


def test_huge_diffs_are_skipped_by_the_limit(repo):
    repo.commit("Add the data table", {"table.py": "".join(f"ROW_{i} = {i}\n" for i in range(4000))})
    run = import_git(repo.path)
    assert run.counts["skipped:huge_diff"] == 1
    assert "Add the data table" not in messages()
    assert import_git(repo.path, "--max-diff-bytes", "100000").counts.get("read", 0) == 0  # the cursor moved past it


def test_a_dry_run_stores_nothing_and_moves_no_cursor(repo):
    run = import_git(repo.path, "--dry-run")
    assert run.counts["created"] == 5
    assert Interaction.objects.count() == 0
    assert import_git(repo.path).counts["created"] == 5


def test_a_path_that_is_no_repository_fails_in_one_line(tmp_path):
    with pytest.raises(CommandError, match="not a git repository"):
        import_git(tmp_path)
