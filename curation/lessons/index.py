"""Nearest-lesson search over one task's vectors: plain numpy, no Django.

Vectors are L2-normalised float32, so cosine similarity is a dot product. Up to EXACT_MAX
vectors the search is exact (one matrix-vector product); above it, a first pass ranks every
vector by the Hamming distance of its sign bits (48 bytes a vector for 384 dimensions, 32x less
memory to read than float32) and the best RESCORE are scored exactly. benchmarks/lessons.py
measures both, and sqlite-vec, at 100k vectors (README "Lessons and memory").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EXACT_MAX = 20_000
RESCORE = 256


def to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes | memoryview, dim: int) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=np.float32, count=dim)


def sign_bits(matrix: np.ndarray) -> np.ndarray:
    """The rows' sign bits packed into uint64 words, one row of the result per word (words x
    vectors: each word of every vector is contiguous, so the distance is a few flat passes)."""
    packed = np.packbits(matrix > 0, axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(np.ascontiguousarray(packed).view(np.uint64).T)


@dataclass
class VectorIndex:
    """The vectors of one task, appendable; `ids[i]` is the lesson of row i."""

    dim: int
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    matrix: np.ndarray = field(init=False)
    bits: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.matrix = np.empty((0, self.dim), dtype=np.float32)
        self.bits = sign_bits(self.matrix)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        if not ids:
            return
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        self.ids = np.concatenate([self.ids, np.asarray(ids, dtype=np.int64)])
        self.matrix = np.concatenate([self.matrix, vectors])
        self.bits = np.concatenate([self.bits, sign_bits(vectors)], axis=1)

    def search(self, query: np.ndarray, k: int, *, exact: bool | None = None) -> list[tuple[int, float]]:
        """The k nearest (lesson id, cosine similarity), most similar first."""
        if not len(self) or k <= 0:
            return []
        query = np.asarray(query, dtype=np.float32).reshape(self.dim)
        exact = len(self) <= EXACT_MAX if exact is None else exact
        rows = np.arange(len(self)) if exact else self._shortlist(query, max(RESCORE, k))
        scores = self.matrix[rows] @ query if not exact else self.matrix @ query
        top = _top(scores, k)
        return [(int(self.ids[rows[i]]), float(scores[i])) for i in top]

    def _shortlist(self, query: np.ndarray, size: int) -> np.ndarray:
        if size >= len(self):
            return np.arange(len(self))
        words = sign_bits(query[None, :])[:, 0]
        distance = np.bitwise_count(self.bits[0] ^ words[0]).astype(np.uint16)
        for row, word in zip(self.bits[1:], words[1:], strict=True):
            distance += np.bitwise_count(row ^ word)
        # Distances are small integers (0..dim): the cut-off comes from their histogram, and the
        # rows at or under it are the shortlist (ties at the cut-off kept: a few more than `size`).
        # One linear pass each, where argpartition over 100k rows took 2 ms.
        cutoff = int(np.searchsorted(np.cumsum(np.bincount(distance, minlength=self.dim + 1)), size))
        return np.flatnonzero(distance <= cutoff)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    part = np.argpartition(-scores, k)[:k] if k < len(scores) else np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
