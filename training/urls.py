from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("training/jobs", apis.JobCreateApi.as_view(), name="training-jobs"),
    path("training/jobs/<int:job_id>", apis.JobDetailApi.as_view(), name="training-job"),
    path("training/jobs/<int:job_id>/cancel", apis.JobCancelApi.as_view(), name="training-job-cancel"),
    path("training/jobs/<int:job_id>/resume", apis.JobResumeApi.as_view(), name="training-job-resume"),
    path("training/status", apis.StatusApi.as_view(), name="training-status"),
    path("training/policies", apis.PolicyListApi.as_view(), name="training-policies"),
    path("training/policies/<slug:task>", apis.PolicyDetailApi.as_view(), name="training-policy"),
]
