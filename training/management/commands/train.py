from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from learning_platform.progress import progress_bar
from training import recipes, runner, services
from training.models import TrainingJob


class Command(BaseCommand):
    help = (
        "Train a LoRA adapter with a progress bar, in TRAINING_PROCESSES processes started through torchrun. "
        "Ctrl-C stops cleanly and leaves a resumable checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", help="The task to train (required unless --resume)")
        parser.add_argument("--dataset", type=int, help="A frozen dataset id (default: the task's newest untainted one)")
        parser.add_argument("--method", choices=["sft", "dpo", "kto"], help="Default: from the dataset's kind")
        parser.add_argument("--backend", default="auto", choices=["auto", "trl", "unsloth"])
        parser.add_argument("--epochs", type=float)
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--lora-rank", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--save-steps", type=int)
        parser.add_argument("--load-in-4bit", action="store_true")
        parser.add_argument("--group-by-length", action="store_true", help="Batch rows of similar length together")
        parser.add_argument("--continue", dest="continue_from_current", action="store_true", help="Start from the task's latest adapter")
        parser.add_argument("--resume", type=int, metavar="JOB", help="Resume a failed or cancelled job from its last checkpoint")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            job = self._job(options)
        except services.TrainingError as exc:
            raise CommandError(exc.one_line()) from None
        self.stderr.write(f"training job {job.pk}: {job.method} on dataset {job.dataset_id} from {job.base_model}")
        bar = progress_bar(self, total=job.total_steps or None, initial=job.step, unit="step", disable=options["verbosity"] == 0)

        def progress(step: int, total: int, last: dict[str, Any]) -> None:
            bar.total = total
            bar.update(step - bar.n)
            if "loss" in last:
                bar.set_postfix(loss=f"{last['loss']:.3f}")

        try:  # Ctrl-C reaches the training processes as a stop (runner.job_execute)
            job = runner.job_execute(job_id=job.pk, progress=progress)
        except Exception:
            job.refresh_from_db()
            self._report(job)  # the failure, as recorded on the row (one line)
            raise
        finally:
            bar.close()
        self._report(job)

    def _job(self, options: dict[str, Any]) -> TrainingJob:
        if options["resume"]:
            job = TrainingJob.objects.filter(pk=options["resume"]).first()
            if job is None:
                raise services.TrainingError(f"No training job {options['resume']}.")
            return services.job_resume(job=job)
        if not options["task"]:
            raise services.TrainingError("Name a --task (or --resume JOB).")
        names = {"epochs": "epochs", "learning_rate": "learning_rate", "batch_size": "batch_size", "lora_rank": "lora_rank",
                 "seed": "seed", "save_steps": "save_steps"}  # fmt: skip
        recipe = {field: options[option] for option, field in names.items() if options[option] is not None}
        for flag in ("load_in_4bit", "group_by_length"):
            if options[flag]:
                recipe[flag] = True
        if errors := recipes.problems(recipe):
            name, messages = next(iter(sorted(errors.items())))
            raise services.TrainingError(f"--{name.replace('_', '-')}: {messages[0]}")
        return services.job_create(
            task=options["task"], dataset_id=options["dataset"], method=options["method"], backend=options["backend"], recipe=recipe,
            continue_from_current=options["continue_from_current"], requested_by="command",
        )  # fmt: skip

    def _report(self, job: TrainingJob) -> None:
        if job.status == TrainingJob.Status.SUCCEEDED:
            loss = job.metrics.get("train_loss")
            self.stdout.write(f"job {job.pk} succeeded: adapter in {job.adapter_path} (train loss {loss:.3f}, eval loss {job.eval_loss})")
        elif job.status == TrainingJob.Status.CANCELLED:
            self.stdout.write(f"job {job.pk} stopped at step {job.step}; resume with: manage.py train --resume {job.pk}")
        else:
            raise CommandError(f"job {job.pk} {job.status}: {job.error.strip().splitlines()[0] if job.error else 'no error recorded'}")
