"""HTTP doors of training (admin scope: jobs run on every client's curated data)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import recipes, services
from .models import TrainingJob


class JobInputSerializer(serializers.Serializer):
    task = serializers.SlugField()
    dataset = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="Default: the task's newest frozen dataset")
    method = serializers.ChoiceField(choices=["sft", "dpo", "kto"], required=False, allow_null=True, default=None)
    backend = serializers.ChoiceField(choices=["auto", "trl", "unsloth"], required=False, default="auto")
    recipe = serializers.DictField(required=False, default=dict, help_text="lora_rank, learning_rate, epochs, batch_size, ...")
    continue_from_current = serializers.BooleanField(required=False, default=False)


class JobSerializer(serializers.ModelSerializer):
    resumable = serializers.BooleanField(read_only=True)

    class Meta:
        model = TrainingJob
        fields = [
            "id", "task", "dataset", "base_model", "method", "backend", "recipe", "recipe_notes", "status", "step", "total_steps",
            "eta_seconds", "loss_curve", "eval_loss", "metrics", "checkpoint", "heartbeat_at", "cancel_requested", "error",
            "adapter_path", "parent_job", "requested_by", "library_versions", "seed", "attempts", "resumable", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip


def _job(job_id: int) -> TrainingJob:
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None:
        raise services.TrainingError("No such training job.", code="not_found")
    return job


class JobCreateApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=JobInputSerializer, responses={201: JobSerializer}, summary="Start a training job on the task queue")
    def post(self, request: Request) -> Response:
        data = JobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["dataset_id"] = values.pop("dataset")
        if errors := recipes.problems(values["recipe"]):  # refused before any dataset is looked up
            raise services.TrainingError("The recipe is invalid.", fields={f"recipe.{k}": v for k, v in errors.items()})
        job = services.job_start(**values, requested_by=f"api:{request.auth.name}")
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(responses=JobSerializer, summary="A training job: status, progress, loss curve, artifacts")
    def get(self, request: Request, job_id: int) -> Response:
        return Response(JobSerializer(_job(job_id)).data)


class JobCancelApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=JobSerializer, summary="Cancel a job (a running one stops at its next step)")
    def post(self, request: Request, job_id: int) -> Response:
        return Response(JobSerializer(services.job_cancel(job=_job(job_id))).data)


class JobResumeApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=None, responses=JobSerializer, summary="Resume a failed or cancelled job from its last checkpoint")
    def post(self, request: Request, job_id: int) -> Response:
        job = services.job_enqueue(job=services.job_resume(job=_job(job_id)))
        return Response(JobSerializer(job).data)


class StatusApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str, required=True)],
        responses=OpenApiTypes.OBJECT,
        summary="Is the task ready to train, and if not, what is short",
    )
    def get(self, request: Request) -> Response:
        task = request.query_params.get("task", "")
        if not task:
            raise services.TrainingError("Name a task.", fields={"task": ["Required."]})
        return Response(services.readiness(task=task))


class PolicySerializer(serializers.Serializer):
    """A task's training policy as the API shows it (the service validates what is written)."""

    task = serializers.SlugField(read_only=True)
    saved = serializers.BooleanField(read_only=True, help_text="False: no policy is saved, the default applies")
    enabled = serializers.BooleanField(required=False)
    auto_train = serializers.BooleanField(required=False, help_text="Let the weekly schedule train the task when ready")
    min_examples = serializers.IntegerField(required=False, min_value=1, max_value=services.MOST)
    min_gold_examples = serializers.IntegerField(required=False, min_value=0, max_value=services.MOST)
    min_average_quality = serializers.FloatField(required=False, min_value=0, max_value=1)
    min_hours_between_jobs = serializers.IntegerField(required=False, min_value=0, max_value=services.MOST)
    method = serializers.ChoiceField(choices=["", "sft", "dpo", "kto"], required=False, help_text="Empty: from the data")
    min_tier = serializers.ChoiceField(choices=["gold", "silver", "bronze"], required=False)
    ready = serializers.BooleanField(read_only=True)
    short = serializers.ListField(child=serializers.CharField(), read_only=True)


def _policy_body(task: str) -> dict:
    state = services.readiness(task=task)
    return {**state["policy"], "ready": state["ready"], "short": state["short"]}


def _changes(request: Request) -> dict:
    if not isinstance(request.data, dict):
        raise services.TrainingError("Send a JSON object of policy fields.", fields={"non_field_errors": ["Expected an object."]})
    return {name: value for name, value in request.data.items() if name not in ("task", "saved", "ready", "short")}


class PolicyListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(responses=PolicySerializer(many=True), summary="Every task with curated examples or a saved policy: policy, readiness")
    def get(self, request: Request) -> Response:
        return Response([_policy_body(task) for task in services.training_tasks()])


class PolicyDetailApi(APIView):
    required_scopes = {"GET": "admin", "PUT": "admin", "PATCH": "admin"}

    @extend_schema(responses=PolicySerializer, summary="A task's training policy (the default until one is saved) and readiness")
    def get(self, request: Request, task: str) -> Response:
        return Response(_policy_body(task))

    @extend_schema(request=PolicySerializer, responses=PolicySerializer, summary="Save the whole policy (fields left out get defaults)")
    def put(self, request: Request, task: str) -> Response:
        services.policy_update(task=task, changes=_changes(request), replace=True)
        return Response(_policy_body(task))

    @extend_schema(request=PolicySerializer, responses=PolicySerializer, summary="Change some fields of the policy (saving it)")
    def patch(self, request: Request, task: str) -> Response:
        services.policy_update(task=task, changes=_changes(request))
        return Response(_policy_body(task))
