"""The trained classifier behind the Classifier interface, with micro-batching.

`classify` may be called from many worker threads at once; a single batching thread collects
the requests that arrive within a few milliseconds of each other and runs them through the
encoder together, which is several times cheaper per message than one at a time.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.classify.decide import decide_many
from bot.classify.encoder import Encoder
from bot.classify.head import Head
from bot.domain import Triage

MAX_CHARS = 4000  # the token budget cuts later; this only bounds tokenizer work


@dataclass(frozen=True)
class _Request:
    text: str
    future: Future[Triage]


class ModelClassifier:
    """Frozen E5 encoder + trained head; below `threshold` a ticket is marked for triage."""

    def __init__(self, encoder: Encoder, head: Head, *, threshold: float = 0.76,
                 max_batch: int = 16, wait_seconds: float = 0.005) -> None:
        self.encoder = encoder
        self.head = head
        self.threshold = threshold
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds
        self.model = head.version
        self.batch_sizes: list[int] = []  # observed, for tests and the benchmark
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="classifier", daemon=True)
        self._thread.start()

    def classify(self, subject: str, text: str) -> Triage:
        """Triage one message (blocks the calling thread, never the event loop)."""
        future: Future[Triage] = Future()
        self._queue.put(_Request(f"{subject}\n{text}".strip()[:MAX_CHARS], future))
        return future.result()

    def classify_many(self, texts: list[str]) -> list[Triage]:
        """Triage many texts directly, in batches (for the CLI and evaluation)."""
        results: list[Triage] = []
        for start in range(0, len(texts), 32):
            chunk = [t[:MAX_CHARS] for t in texts[start:start + 32]]
            results += self._predict(self.encoder.embed(chunk), chunk)
        return results

    def close(self) -> None:
        """Stop the batching thread."""
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            try:
                while len(batch) < self.max_batch:
                    item = self._queue.get(timeout=self.wait_seconds)
                    if item is None:
                        self._queue.put(None)
                        break
                    batch.append(item)
            except queue.Empty:
                pass
            self.batch_sizes.append(len(batch))
            try:
                texts = [r.text for r in batch]
                triages = self._predict(self.encoder.embed(texts), texts)
            except Exception as exc:  # hand the failure to every waiting caller
                for request in batch:
                    request.future.set_exception(exc)
                continue
            for request, triage in zip(batch, triages, strict=True):
                request.future.set_result(triage)

    def _predict(self, x: np.ndarray[Any, Any], texts: list[str]) -> list[Triage]:
        return decide_many(self.head, x, texts, threshold=self.threshold)
