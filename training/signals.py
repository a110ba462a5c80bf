"""Facts training announces to later apps."""

from __future__ import annotations

from django.dispatch import Signal

# Sent after a job succeeded, with job (the TrainingJob). The registry registers a version.
job_succeeded = Signal()
