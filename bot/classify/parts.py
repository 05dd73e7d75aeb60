"""A message read whole and sentence by sentence: the head reads the whole text's embedding and
its sentences' embeddings pooled (pure splitting and pooling).

One mean-pooled embedding of a whole mail is dominated by what most of its words are about: a
signature, a legal footer, a ticket export's fields, a long description of the setup; and it
ends at the encoder's token budget. The sentence that states the impact ("no order since 6 am",
"only my laptop") is a small part of it. Embedding each sentence on its own and pooling them
two ways keeps it: the element-wise maximum (a sentence that stands out on some dimension keeps
it, however long the rest) and the mean (every sentence counted once). The whole text's
embedding stays beside them: without it a short keyword subject ("Invoice portal") weighs as
much as the sentence that says what broke. On the three evaluation sets the three together beat
the whole text alone on severity in both languages and flagged fewer messages (README, "The
classifier"); they cost a second encoder pass over the sentences.

POOLINGS names what a head reads; a head records its own (head.json "pooling"):
- "text": the whole text's embedding (the heads before issue 25; a tuned head still reads it);
- "text+parts": that, then the normalised maximum and the normalised mean over the sentences'
  embeddings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

TEXT = "text"
PARTS = "text+parts"
POOLINGS = (TEXT, PARTS)
MIN_CHARS = 12  # "Hallo," or "Thanks" alone says nothing about impact
MAX_PARTS = 24  # bounds the work of a long chain; the impact is stated near the top
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

Embed = Callable[[list[str]], np.ndarray[Any, np.dtype[np.float32]]]


def split(text: str) -> list[str]:
    """The text's sentences and lines of at least MIN_CHARS, quoted lines (">") left out; the
    first MAX_PARTS of them, or the text's own (unquoted) start when it has none."""
    own = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    parts = [sentence.strip() for line in own for sentence in _SENTENCE_END.split(line)
             if len(sentence.strip()) >= MIN_CHARS]
    return parts[:MAX_PARTS] or [" ".join(own).strip()[:200] or text]


def _normalised(rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    result: np.ndarray[Any, Any] = rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(
        min=1e-12)
    return result


def features(embed: Embed, texts: Sequence[str], pooling: str) -> np.ndarray[Any, Any]:
    """The rows a head with `pooling` reads, one per text. `embed` gives one normalised row
    per text (an encoder's or the embedding cache's); it is called once with the texts, then
    once with their sentences that are not one of the texts."""
    whole = embed(list(texts))
    if pooling == TEXT:
        return whole
    if pooling != PARTS:
        raise ValueError(f"unknown pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    split_texts = [split(text) for text in texts]
    # a sentence is embedded once; a one-sentence chat message is its own whole text
    known = dict(zip(texts, whole, strict=True))
    fresh = [part for part in dict.fromkeys(p for parts in split_texts for p in parts)
             if part not in known]
    if fresh:
        known.update(zip(fresh, embed(fresh), strict=True))
    most = np.zeros_like(whole)
    mean = np.zeros_like(whole)
    for number, parts in enumerate(split_texts):
        own = np.stack([known[part] for part in parts])
        most[number], mean[number] = own.max(axis=0), own.mean(axis=0)
    return np.hstack([whole, _normalised(most), _normalised(mean)]).astype(np.float32)


def batched(embed: Embed, batch: int = 32) -> Embed:
    """`embed` applied in batches of similar length (less padding), rows in input order."""
    def run(texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray[Any, np.dtype[np.float32]] | None = None
        for start in range(0, len(order), batch):
            chunk = order[start:start + batch]
            rows = embed([texts[i] for i in chunk])
            if out is None:
                out = np.zeros((len(texts), rows.shape[1]), dtype=np.float32)
            out[chunk] = rows
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)
    return run
