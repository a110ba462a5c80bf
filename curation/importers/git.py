"""A git repository's history as training data: each commit's diff the prompt, its message the answer.

The `git` executable is run without a shell. Merges, bot authors, binary and generated files
(lock files, minified, vendored) are left out, and so are commits whose remaining diff is empty
or larger than the limit. Diffs and messages are scrubbed (secrets, e-mail addresses, the rest
of curation.pii) before they are stored; the author's name and address are never stored.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from .. import pii

BOT_AUTHOR = re.compile(r"\[bot\]|dependabot|renovate|github-actions", re.IGNORECASE)
GENERATED = (
    "*.lock", "package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", "go.sum", "*.min.js", "*.min.css", "*.map",
    "*.pb.go", "*_pb2.py", "*.snap",
)  # fmt: skip
VENDORED = ("vendor/", "node_modules/", "third_party/", "dist/", "build/", ".venv/", "site-packages/")
PROMPT = "Write the commit message for this change.\n\n"


class GitError(RuntimeError):
    """git failed, or the path is not a repository."""


@dataclass(frozen=True)
class Limits:
    max_diff_bytes: int = 32_000
    min_diff_lines: int = 1


@dataclass(frozen=True)
class Commit:
    sha: str
    diff: str  # scrubbed
    message: str  # scrubbed


@dataclass
class Walk:
    """What a walk over the history found: commits to import and why the others were skipped."""

    commits: list[Commit] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    last_examined: str = ""

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "-c", "core.quotepath=off", *args],
            capture_output=True, check=False, timeout=120,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git could not run: {exc}") from exc
    if done.returncode != 0:
        raise GitError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode("utf-8", errors="replace")


def repository_id(repo: Path, branch: str) -> str:
    """The branch's root commit: the same in every clone, whatever the path."""
    roots = git(repo, "rev-list", "--max-parents=0", branch).split()
    if not roots:
        raise GitError(f"{branch} has no commits.")
    return sorted(roots)[0]


def resolve_branch(repo: Path, branch: str) -> tuple[str, str]:
    """(the branch's name, its tip commit); the checked-out branch when none is named."""
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise GitError(f"{repo} is not a git repository.")
    name = branch or git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip()
    return name, git(repo, "rev-parse", "--verify", f"{name}^{{commit}}").strip()


def is_generated(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    vendored = any(path.startswith(v) or f"/{v}" in path for v in VENDORED)
    return vendored or any(fnmatch(name, pattern) for pattern in GENERATED)


def _kept_paths(repo: Path, sha: str) -> tuple[list[str], int]:
    """The text files of a commit that are not generated, and how many binary files it had."""
    kept, binary = [], 0
    for row in git(repo, "show", "--format=", "--numstat", "-z", "--no-renames", sha).split("\0"):
        parts = row.strip("\n").split("\t")
        if len(parts) != 3:
            continue
        added, removed, path = parts
        if added == "-" and removed == "-":
            binary += 1
        elif not is_generated(path):
            kept.append(path)
    return kept, binary


def _diff(repo: Path, sha: str, paths: list[str]) -> str:
    return git(repo, "show", "--format=", "--patch", "--no-color", "--no-ext-diff", "--no-renames", sha, "--", *paths)


def _scrubbed(text: str) -> str:
    return pii.scrub(text)[0]


def examine(repo: Path, sha: str, limits: Limits, walk: Walk) -> None:
    """Add one commit to the walk, or count why it is skipped."""
    parents, author, email, message = git(repo, "show", "-s", "--format=%P%x00%an%x00%ae%x00%B", sha).split("\0", 3)
    if len(parents.split()) > 1:
        return walk.skip("merge")
    if BOT_AUTHOR.search(author) or BOT_AUTHOR.search(email):
        return walk.skip("bot_author")
    if not message.strip():
        return walk.skip("empty_message")
    paths, binary = _kept_paths(repo, sha)
    if binary:
        walk.skip("binary_files_left_out")  # per commit; its text files are still imported
    diff = _diff(repo, sha, paths) if paths else ""
    changed = sum(1 for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---")))
    if changed < limits.min_diff_lines:
        return walk.skip("empty_diff")
    if len(diff.encode()) > limits.max_diff_bytes:
        return walk.skip("huge_diff")
    walk.commits.append(Commit(sha, _scrubbed(diff), _scrubbed(message.strip())))
    return None


def new_commits(repo: Path, tip: str, *, after: str = "", since: str = "") -> Iterator[str]:
    """Commits reachable from tip and not from `after`, oldest first, merges left out."""
    args = ["rev-list", "--reverse", "--no-merges"]
    if since:
        args.append(f"--since={since}")
    args.append(f"{after}..{tip}" if after else tip)
    yield from git(repo, *args).split()


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    try:
        git(repo, "merge-base", "--is-ancestor", older, newer)
    except GitError:
        return False
    return True
