"""Facts the registry announces to later apps (abtesting listens; the registry never imports it).

- version_registered(version): a training job's version was registered (sent after the commit).
- choose_version(task, client, user_id) -> ModelVersion | None: asked before a request is
  served; a receiver may answer another version for this subject (a canary). The first
  non-None answer wins; with none, the router or the champion serves.
- generation_served(task, version, interaction_id, client, user_id, max_tokens, temperature): a
  request was answered and logged (interaction_id is None when the subject opted out and nothing
  was stored).
- versions_tainted(versions, erasure_id): versions were just marked tainted (inside the erasure's
  transaction); abtesting stops experiments that pit one, and returns counts for the erasure record.
"""

from __future__ import annotations

from django.dispatch import Signal

version_registered = Signal()
choose_version = Signal()
generation_served = Signal()
versions_tainted = Signal()
