"""HTTP doors of abtesting: /api/v1/experiments/... and /api/v1/evaluations/... (admin scope)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.models import ModelVersion

from . import experiments, services
from .models import EvalReport, EvaluationSettings, Experiment, Trial


class ExperimentSerializer(serializers.ModelSerializer):
    control = serializers.CharField(source="control.name")
    challenger = serializers.CharField(source="challenger.name")

    class Meta:
        model = Experiment
        fields = ["id", "task", "control", "challenger", "mode", "sample_rate", "min_trials", "max_trials", "max_days", "min_win_rate",
                  "alpha", "status", "recommendation", "reason", "stats", "decision", "decided_by", "arena", "started_by", "created_at",
                  "evaluated_at", "ended_at"]  # fmt: skip


class TrialSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trial
        fields = ["id", "interaction", "replayed", "shown", "output_a", "output_b", "latency_a_ms", "latency_b_ms", "error", "verdict",
                  "source", "ground_truth", "score_a", "score_b", "detail", "created_at"]  # fmt: skip


class ExperimentDetailSerializer(ExperimentSerializer):
    recent_trials = serializers.SerializerMethodField()

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "recent_trials"]

    @extend_schema_field(TrialSerializer(many=True))
    def get_recent_trials(self, obj: Experiment) -> list[dict[str, object]]:
        return TrialSerializer(experiments.trials_of(experiment=obj)[:50], many=True).data  # type: ignore[return-value]


class ExperimentStartSerializer(serializers.Serializer):
    challenger = serializers.CharField(help_text="The version name to try against the task's champion")
    mode = serializers.ChoiceField(choices=Experiment.Mode.choices, required=False)
    sample_rate = serializers.FloatField(min_value=0.001, max_value=1, required=False)
    min_trials = serializers.IntegerField(min_value=1, required=False)
    max_trials = serializers.IntegerField(min_value=1, required=False)
    max_days = serializers.IntegerField(min_value=1, required=False)
    min_win_rate = serializers.FloatField(min_value=0.5, max_value=1, required=False)
    alpha = serializers.FloatField(min_value=0.0001, max_value=0.5, required=False)

    def validate_challenger(self, value: str) -> ModelVersion:
        version = ModelVersion.objects.filter(name=value).first()
        if version is None:
            raise serializers.ValidationError(f"No model version named {value!r}.")
        return version

    def validate(self, data: dict[str, object]) -> dict[str, object]:
        if "min_trials" in data and "max_trials" in data and data["max_trials"] < data["min_trials"]:  # type: ignore[operator]
            raise serializers.ValidationError({"max_trials": ["Must be at least min_trials."]})
        return data


LARGEST = 1_000_000_000  # what the rule columns hold, with room


class ExperimentRulesSerializer(serializers.Serializer):
    """The editable part of a running experiment; the service checks the rules together."""

    sample_rate = serializers.FloatField(required=False, help_text="Shadow only: a canary's share cannot change")
    min_trials = serializers.IntegerField(required=False, max_value=LARGEST)
    max_trials = serializers.IntegerField(required=False, max_value=LARGEST)
    max_days = serializers.IntegerField(required=False, max_value=LARGEST)
    min_win_rate = serializers.FloatField(required=False)
    alpha = serializers.FloatField(required=False)


class EvaluationSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvaluationSettings
        fields = ["task", "scorer", "number_tolerance", "max_tokens", "replay_limit", "replay_days", "updated_at"]
        read_only_fields = ["task", "updated_at"]


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class ReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvalReport
        fields = ["id", "task", "summary", "versions", "trend", "regressions", "created_at"]


def _experiment(pk: int) -> Experiment:
    experiment = Experiment.objects.select_related("control", "challenger").filter(pk=pk).first()
    if experiment is None:
        raise experiments.ExperimentError(f"No experiment {pk}.", code="not_found")
    return experiment


class ExperimentListApi(APIView):
    required_scopes = {"GET": "admin", "POST": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str), OpenApiParameter("status", str)],
        responses=ExperimentSerializer(many=True),
        summary="Experiments, newest first",
    )
    def get(self, request: Request) -> Response:
        rows = Experiment.objects.select_related("control", "challenger")
        for name in ("task", "status"):
            if request.query_params.get(name):
                rows = rows.filter(**{name: request.query_params[name]})
        return Response(ExperimentSerializer(rows[:500], many=True).data)

    @extend_schema(request=ExperimentStartSerializer, responses={201: ExperimentSerializer}, summary="Start an experiment")
    def post(self, request: Request) -> Response:
        data = ExperimentStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        experiment = experiments.experiment_start(actor=f"api:{request.auth.name}", **values)
        return Response(ExperimentSerializer(experiment).data, status=201)


class ExperimentDetailApi(APIView):
    required_scopes = {"GET": "admin", "PATCH": "admin"}

    @extend_schema(responses=ExperimentDetailSerializer, summary="An experiment with its numbers and its 50 latest trials")
    def get(self, request: Request, pk: int) -> Response:
        return Response(ExperimentDetailSerializer(_experiment(pk)).data)

    @extend_schema(
        request=ExperimentRulesSerializer,
        responses=ExperimentSerializer,
        summary="Change a running experiment's stopping rules or (shadow) sample rate; it is evaluated at once",
    )
    def patch(self, request: Request, pk: int) -> Response:
        data = ExperimentRulesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        done = experiments.experiment_update_rules(experiment=_experiment(pk), actor=f"api:{request.auth.name}", **data.validated_data)
        return Response(ExperimentSerializer(done).data)


ACTIONS = {
    "approve": experiments.experiment_approve,
    "reject": experiments.experiment_reject,
    "stop": experiments.experiment_stop,
}


class ExperimentActionApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        operation_id="experiment_action",
        request=ReasonSerializer,
        responses=ExperimentSerializer,
        summary="approve (promote the challenger), reject (keep the control), stop, or evaluate now",
    )
    def post(self, request: Request, pk: int, action: str) -> Response:
        experiment = _experiment(pk)
        if action == "evaluate":
            return Response(ExperimentSerializer(experiments.experiment_evaluate(experiment=experiment)).data)
        if action not in ACTIONS:
            raise experiments.ExperimentError(f"Unknown action {action!r}.", code="not_found")
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        done = ACTIONS[action](experiment=experiment, actor=f"api:{request.auth.name}", reason=data.validated_data["reason"])
        return Response(ExperimentSerializer(done).data)


class ReportListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str)],
        responses=ReportSerializer(many=True),
        summary="Monthly evaluation reports, newest first",
    )
    def get(self, request: Request) -> Response:
        rows = EvalReport.objects.all()
        if request.query_params.get("task"):
            rows = rows.filter(task=request.query_params["task"])
        return Response(ReportSerializer(rows[:100], many=True).data)


class EvaluationSettingsApi(APIView):
    required_scopes = {"GET": "admin", "PUT": "admin"}

    @extend_schema(responses=EvaluationSettingsSerializer, summary="A task's evaluation settings (the defaults until saved)")
    def get(self, request: Request, task: str) -> Response:
        return Response(EvaluationSettingsSerializer(services.evaluation_settings(task=task)).data)

    @extend_schema(
        request=EvaluationSettingsSerializer,
        responses=EvaluationSettingsSerializer,
        summary="Save a task's evaluation settings: scorer, number tolerance, answer budget, replay",
    )
    def put(self, request: Request, task: str) -> Response:
        data = EvaluationSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        saved = services.evaluation_settings_save(task=task, **data.validated_data)
        return Response(EvaluationSettingsSerializer(saved).data)
