"""The embedding cache keeps fp32 and int8 embeddings apart: an int8 evaluation that read fp32
vectors from the cache printed fp32 scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bot.classify.cache import EmbeddingCache


class Constant:
    """An embedder whose every row is `value` (the cache only needs the Embedder fields)."""

    def __init__(self, value: float, *, quantized: bool) -> None:
        self.source = "var/models/multilingual-e5-small"
        self.max_tokens = 256
        self.dimension = 3
        self.quantized = quantized
        self.value = value
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        self.calls += 1
        return np.full((len(texts), self.dimension), self.value, dtype=np.float32)


def test_int8_embeddings_are_not_read_from_fp32_ones(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "embeddings.npz")
    cache.embed(Constant(1.0, quantized=False), ["Mailserver down"])
    int8 = Constant(2.0, quantized=True)
    rows = cache.embed(int8, ["Mailserver down"])
    assert rows.tolist() == [[2.0, 2.0, 2.0]]
    assert int8.calls == 1


def test_each_precision_is_read_back_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.npz"
    first = EmbeddingCache(path)
    first.embed(Constant(1.0, quantized=False), ["Mailserver down"])
    first.embed(Constant(2.0, quantized=True), ["Mailserver down"])
    again = EmbeddingCache(path)
    fp32, int8 = Constant(9.0, quantized=False), Constant(9.0, quantized=True)
    assert again.embed(fp32, ["Mailserver down"]).tolist() == [[1.0, 1.0, 1.0]]
    assert again.embed(int8, ["Mailserver down"]).tolist() == [[2.0, 2.0, 2.0]]
    assert fp32.calls == 0
    assert int8.calls == 0
