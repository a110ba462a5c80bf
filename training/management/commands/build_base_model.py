from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from learning_platform.progress import progress_bar
from training.base_models import (
    build_base_model,
    cached_model_path,
    default_config,
    ensure_built,
    pretrained_config,
)


class Command(BaseCommand):
    help = (
        "Build the offline base model (BPE tokenizer with one token per digit + a few-million-parameter Llama, "
        "pretrained on a generated curriculum of copying skills, or random-initialised) with no download. "
        "With BASE_MODEL set and no --out there is nothing to build."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out", type=Path,
            help="Where to write it (default: ARTIFACTS_DIR/base/<recipe hash>/tiny-llama, what an empty BASE_MODEL uses)",
        )  # fmt: skip
        parser.add_argument("--force", action="store_true", help="Rebuild even if a model is already there")
        parser.add_argument(
            "--pretrain-steps", type=int, default=None,
            help="Pretraining steps of the pretrained recipe (default: BASE_MODEL_PRETRAIN_STEPS); 0 leaves the model random-initialised",
        )  # fmt: skip

    def handle(self, *args: Any, out: Path | None, force: bool, pretrain_steps: int | None, **options: Any) -> None:
        if settings.BASE_MODEL and out is None and pretrain_steps is None:
            self.stdout.write(f"BASE_MODEL is {settings.BASE_MODEL}: jobs start from it, nothing to build")
            return
        if pretrain_steps is not None and pretrain_steps < 0:
            raise CommandError("--pretrain-steps must be 0 or more")
        config = default_config() if pretrain_steps is None else pretrained_config(pretrain_steps)
        target = out or cached_model_path(Path(settings.ARTIFACTS_DIR), config)
        if (target / "config.json").exists() and not force:
            self.stdout.write(f"{target} already holds a model (use --force to rebuild)")
            return
        if target.exists() and not target.is_dir():
            raise CommandError(f"--out {target} is a file, not a directory")
        start = time.perf_counter()
        quiet = not config.pretrain_steps or options["verbosity"] == 0
        bar = progress_bar(self, total=config.pretrain_steps, unit="step", desc="pretraining", disable=quiet)

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        try:
            with bar:
                if out is None:  # the shared place: under the lock that jobs and serving build under
                    if force:
                        shutil.rmtree(target, ignore_errors=True)
                    ensure_built(Path(settings.ARTIFACTS_DIR), config, progress)
                else:
                    build_base_model(target, config, progress)
        except OSError as exc:
            raise CommandError(f"cannot write the model to {target}: {exc}") from None
        pretraining = json.loads((target / "build_info.json").read_text())["pretraining"]
        loss = f", pretraining loss {pretraining['first_loss']} -> {pretraining['last_loss']}" if pretraining else ""
        self.stdout.write(f"built the base model in {target} in {time.perf_counter() - start:.1f}s{loss}")
