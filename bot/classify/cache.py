"""Embeddings cached on disk (var/cache/), so that training and evaluation embed each text once.

The encoder forward pass is the only expensive step (20-50 texts/s on a shared 2-core CPU);
the key covers the text, the token budget, the encoder and its precision (int8 embeddings differ
from fp32 ones), so a change of any re-embeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

CACHE_DIR = Path("var/cache")


class Embedder(Protocol):
    """What the cache needs from an encoder."""

    source: str
    max_tokens: int
    dimension: int
    quantized: bool

    def embed(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One normalised row per text."""
        ...


def text_key(source: str, max_tokens: int, text: str) -> str:
    """The cache key of one text under one encoder configuration."""
    return hashlib.sha256(f"{source}|{max_tokens}|{text}".encode()).hexdigest()[:32]


class EmbeddingCache:
    """A key -> vector store in one .npz file, written after every call that added rows."""

    def __init__(self, path: Path = CACHE_DIR / "embeddings.npz") -> None:
        self.path = path
        self.rows: dict[str, np.ndarray[Any, Any]] = {}
        if path.exists():
            with np.load(path) as data:
                self.rows = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def embed(self, encoder: Embedder, texts: Sequence[str],
              batch: int = 32) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings of `texts`, computing only the ones not cached yet."""
        # Keys before 2026-12-02 had no precision, and an int8 run could leave int8 vectors under
        # them that fp32 runs then read: naming both precisions retires every such key.
        precision = "int8" if encoder.quantized else "fp32"
        source = f"{Path(encoder.source).name}|{precision}"
        keys = [text_key(source, encoder.max_tokens, text) for text in texts]
        missing = sorted({k: i for i, k in enumerate(keys) if k not in self.rows}.values(),
                         key=lambda i: len(texts[i]))  # similar lengths batch with less padding
        for start in range(0, len(missing), batch):
            chunk = missing[start:start + batch]
            vectors = encoder.embed([texts[i] for i in chunk])
            for i, vector in zip(chunk, vectors, strict=True):
                self.rows[keys[i]] = vector
        if missing:
            self.save()
        out = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            out[i] = self.rows[key]
        return out

    def save(self) -> None:
        """Write the store (atomically, so an interrupted run leaves the old file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.rows)
        vectors = np.stack([self.rows[k] for k in keys]) if keys else np.zeros((0, 0))
        partial = self.path.with_suffix(".partial.npz")
        np.savez(partial, keys=np.array(keys), vectors=vectors.astype(np.float32))
        partial.replace(self.path)
