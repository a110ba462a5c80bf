"""django-q2's schedule admin with a "Run now" action. django_q registers its own `ScheduleAdmin`;
this module (imported by training/admin.py) replaces that registration with a subclass, so the
list, filters and forms stay django_q's."""

from __future__ import annotations

import logging

import django_q.admin  # noqa: F401  (its registration must exist before it is replaced)
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django_q.admin import ScheduleAdmin
from django_q.models import Schedule

from learning_platform.schedules import ScheduleError, schedule_run

logger = logging.getLogger(__name__)
MESSAGE_CHARS = 1000


class RunnableScheduleAdmin(ScheduleAdmin):
    actions = ["run_now"]

    @admin.action(description="Run now (in this request; the next scheduled run stays as it is)")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        for schedule in queryset.order_by("name"):
            try:
                result = schedule_run(name=schedule.name or "", actor=f"admin:{request.user.get_username()}")
            except ScheduleError as exc:
                self.message_user(request, exc.one_line(), messages.ERROR)
                continue
            except Exception as exc:  # the traceback goes to the log; the admin sees the one line
                logger.exception("schedule %s failed when run from the admin", schedule.name)
                self.message_user(request, f"{schedule.name}: failed ({type(exc).__name__}: {exc})", messages.ERROR)
                continue
            text = "; ".join(line for line in result.splitlines() if line.strip())
            self.message_user(request, f"{schedule.name}: {text[:MESSAGE_CHARS]}", messages.SUCCESS)


if admin.site.is_registered(Schedule):
    admin.site.unregister(Schedule)
admin.site.register(Schedule, RunnableScheduleAdmin)
