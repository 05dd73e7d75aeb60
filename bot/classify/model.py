"""The trained classifier behind the Classifier interface, with batching on its own thread.

`submit` (from the event loop) and `classify` (from any thread) queue a request; one inference
thread, with the torch threads pinned on it, takes everything that is waiting, sorts it by
length (a batch is padded to its longest text) and runs it through the encoder in batches of
at most `max_batch`. The batch size is not capped by any thread pool: whatever waits is batched.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from bot.classify.decide import decide_many
from bot.classify.encoder import Encoder
from bot.classify.head import Head
from bot.classify.parts import batched, features
from bot.domain import Triage

MAX_CHARS = 4000  # the token budget cuts later; this only bounds tokenizer work
SORT_WINDOW = 128  # requests taken and sorted by length at once: bounds one round's latency


def lower_priority(nice: int) -> None:
    """Raise the calling OS thread's nice value by `nice` (Linux: per thread; no privileges).

    Thinking yields the CPU to accepting: the torch worker threads this thread starts later
    inherit the value, while the event loop that stores mail keeps its own.
    """
    if nice <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        native = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, native,
                       min(19, os.getpriority(os.PRIO_PROCESS, native) + nice))


@dataclass(frozen=True)
class _Request:
    text: str
    future: Future[Triage]


class ModelClassifier:
    """Frozen E5 encoder + trained head; below `threshold` a ticket is marked for triage."""

    def __init__(self, encoder: Encoder, head: Head, *, threshold: float = 0.79,
                 max_batch: int = 32, wait_seconds: float = 0.005, nice: int = 10) -> None:
        self.encoder = encoder
        self.head = head
        self.threshold = threshold
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds
        self.nice = nice
        self.model = head.version
        # the text lengths of the last batches, observed for tests and the benchmark
        self.batches: deque[tuple[int, ...]] = deque(maxlen=1000)
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="classifier", daemon=True)
        self._thread.start()

    def submit(self, subject: str, text: str) -> Future[Triage]:
        """Queue one message for the inference thread; the future holds its triage."""
        future: Future[Triage] = Future()
        self._queue.put(_Request(f"{subject}\n{text}".strip()[:MAX_CHARS], future))
        return future

    def classify(self, subject: str, text: str) -> Triage:
        """Triage one message (blocks the calling thread, never the event loop)."""
        return self.submit(subject, text).result()

    def classify_many(self, texts: list[str]) -> list[Triage]:
        """Triage many texts directly, in batches (for the CLI and evaluation)."""
        results: list[Triage] = []
        for start in range(0, len(texts), 32):
            chunk = [t[:MAX_CHARS] for t in texts[start:start + 32]]
            results += self._predict(chunk)
        return results

    def close(self) -> None:
        """Stop the batching thread."""
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _take_waiting(self, first: _Request) -> list[_Request]:
        """`first` and everything queued behind it; a stop request stays queued."""
        waiting = [first]
        limit = max(SORT_WINDOW, self.max_batch)  # the rest waits its turn
        try:
            while len(waiting) < limit:
                item = self._queue.get_nowait()
                if item is None:
                    self._queue.put(None)
                    break
                waiting.append(item)
        except queue.Empty:
            pass
        if len(waiting) < self.max_batch:  # a few milliseconds for company
            try:
                item = self._queue.get(timeout=self.wait_seconds)
                if item is None:
                    self._queue.put(None)
                else:
                    waiting.append(item)
            except queue.Empty:
                pass
        return waiting

    def _run(self) -> None:
        self.encoder.pin_threads()  # torch's thread count is per OS thread: set it on this one
        niced = False
        while True:
            first = self._queue.get()
            if first is None:
                return
            if not niced:  # on the first request: the owner may set `nice` after construction
                lower_priority(self.nice)
                niced = True
            waiting = self._take_waiting(first)
            waiting.sort(key=lambda r: len(r.text))
            for start in range(0, len(waiting), self.max_batch):
                self._answer(waiting[start:start + self.max_batch])

    def _answer(self, batch: list[_Request]) -> None:
        self.batches.append(tuple(len(r.text) for r in batch))
        try:
            texts = [r.text for r in batch]
            triages = self._predict(texts)
        except Exception as exc:  # hand the failure to every waiting caller
            for request in batch:
                request.future.set_exception(exc)
            return
        for request, triage in zip(batch, triages, strict=True):
            request.future.set_result(triage)

    def _predict(self, texts: list[str]) -> list[Triage]:
        x = features(batched(self.encoder.embed, self.max_batch), texts, self.head.pooling)
        return decide_many(self.head, x, texts, threshold=self.threshold)
