from __future__ import annotations

from tests.training.conftest import base_model_dir, training_settings  # noqa: F401  (shared fixtures)
