from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training.base_models import build_base_model, built_model_path


class Command(BaseCommand):
    help = "Build the tiny offline base model (BPE tokenizer + few-million-parameter Llama) from the shipped corpus."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out", type=Path, help="Where to write it (default: ARTIFACTS_DIR/base/tiny-llama, what an empty BASE_MODEL uses)"
        )
        parser.add_argument("--force", action="store_true", help="Rebuild even if a model is already there")

    def handle(self, *args: Any, out: Path | None, force: bool, **options: Any) -> None:
        out = out or built_model_path()
        if (out / "config.json").exists() and not force:
            self.stdout.write(f"{out} already holds a model (use --force to rebuild)")
            return
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is a file, not a directory")
        start = time.perf_counter()
        try:
            build_base_model(out)
        except OSError as exc:
            raise CommandError(f"cannot write the model to {out}: {exc}") from None
        self.stdout.write(f"built the base model in {out} in {time.perf_counter() - start:.1f}s")
