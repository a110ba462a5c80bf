from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from abtesting import experiments, services
from abtesting.models import Experiment
from learning_platform.errors import DomainError
from registry.models import ModelVersion


def _line(e: Experiment) -> str:
    s = e.stats
    numbers = (
        f"{s['trials']} trials, win rate {s['win_rate']:.2f} [{s['win_rate_low']:.2f}, {s['win_rate_high']:.2f}], p = {s['p_value']:.3g}"
        if s.get("trials")
        else "no trials"
    )
    return f"{e.pk:>4} {e.task:15s} {e.challenger.name} vs {e.control.name} {e.mode} {e.status}: {e.recommendation} ({numbers})"


class Command(BaseCommand):
    help = "Experiments on live traffic: start, list, show, evaluate, approve, reject, stop; `arena` runs a candidate's arena chain."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="Start an experiment of a version against its task's champion")
        start.add_argument("version")
        start.add_argument("--mode", choices=Experiment.Mode.values)
        start.add_argument("--sample-rate", type=float)
        start.add_argument("--min-trials", type=int)
        start.add_argument("--max-trials", type=int)
        start.add_argument("--max-days", type=int)
        listing = sub.add_parser("list", help="Experiments, newest first")
        listing.add_argument("--task")
        for name in ("show", "evaluate", "approve", "reject", "stop"):
            one = sub.add_parser(name)
            one.add_argument("id", type=int)
            if name in ("approve", "reject", "stop"):
                one.add_argument("--reason", default="")
        arena = sub.add_parser("arena", help="The automatic chain by hand: the arena, then an experiment when the candidate passes")
        arena.add_argument("version")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            self._handle(action, options)
        except DomainError as exc:
            raise CommandError(exc.one_line()) from None

    def _version(self, name: str) -> ModelVersion:
        found = ModelVersion.objects.filter(name=name).first()
        if found is None:
            raise CommandError(f"No model version named {name!r}.")
        return found

    def _experiment(self, pk: int) -> Experiment:
        found = Experiment.objects.select_related("control", "challenger").filter(pk=pk).first()
        if found is None:
            raise CommandError(f"No experiment {pk}.")
        return found

    def _handle(self, action: str, options: dict[str, Any]) -> None:
        actor = "command"
        if action == "start":
            e = experiments.experiment_start(
                challenger=self._version(options["version"]), actor=actor, mode=options["mode"], sample_rate=options["sample_rate"],
                min_trials=options["min_trials"], max_trials=options["max_trials"], max_days=options["max_days"],
            )  # fmt: skip
            self.stdout.write(_line(e))
        elif action == "list":
            rows = Experiment.objects.select_related("control", "challenger")
            for e in rows.filter(task=options["task"]) if options["task"] else rows:
                self.stdout.write(_line(e))
        elif action == "arena":
            result = services.candidate_evaluate(version=self._version(options["version"]), actor=actor)
            self.stdout.write(f"{result['version']}: {result['status']}" + (f" ({result['reason']})" if "reason" in result else ""))
        else:
            e = self._experiment(options["id"])
            if action == "evaluate":
                e = experiments.experiment_evaluate(experiment=e, actor=actor)
            elif action in ("approve", "reject", "stop"):
                service = {"approve": experiments.experiment_approve, "reject": experiments.experiment_reject,
                           "stop": experiments.experiment_stop}[action]  # fmt: skip
                e = service(experiment=e, actor=actor, reason=options["reason"])
            self.stdout.write(_line(e))
            self.stdout.write(f"     {e.reason}")
