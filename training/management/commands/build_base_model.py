from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from training.base_models import PRETRAINED, TinyConfig, build_base_model, cached_model_path, default_config


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
        if settings.BASE_MODEL and out is None:
            self.stdout.write(f"BASE_MODEL is {settings.BASE_MODEL}: jobs start from it, nothing to build")
            return
        config = default_config()
        if pretrain_steps is not None:
            if pretrain_steps < 0:
                raise CommandError("--pretrain-steps must be 0 or more")
            config = replace(PRETRAINED, pretrain_steps=pretrain_steps) if pretrain_steps else TinyConfig()
        out = out or cached_model_path(Path(settings.ARTIFACTS_DIR), config)
        if (out / "config.json").exists() and not force:
            self.stdout.write(f"{out} already holds a model (use --force to rebuild)")
            return
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is a file, not a directory")
        start = time.perf_counter()
        bar = tqdm(total=config.pretrain_steps, unit="step", desc="pretraining", file=self.stderr,
                   disable=not config.pretrain_steps or options["verbosity"] == 0)  # fmt: skip

        def progress(step: int, steps: int, loss: float) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        try:
            with bar:
                build_base_model(out, config, progress)
        except OSError as exc:
            raise CommandError(f"cannot write the model to {out}: {exc}") from None
        pretraining = json.loads((out / "build_info.json").read_text())["pretraining"]
        loss = f", pretraining loss {pretraining['first_loss']} -> {pretraining['last_loss']}" if pretraining else ""
        self.stdout.write(f"built the base model in {out} in {time.perf_counter() - start:.1f}s{loss}")
