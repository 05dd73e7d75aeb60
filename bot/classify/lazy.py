"""A classifier that loads in the background, so the service accepts mail while the model loads.

Requests made before the model is there wait for it (the mail is stored already; only its
processing waits). A classifier with `submit` (the model's inference thread) is awaited
directly; any other runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol, runtime_checkable

from bot.classify import Classifier
from bot.classify.language import LanguageDetector
from bot.domain import Language, Triage

log = logging.getLogger(__name__)


@runtime_checkable
class Submitting(Protocol):
    """A classifier with its own inference thread: `submit` queues and returns at once."""

    def submit(self, subject: str, text: str) -> Future[Triage]:
        """Queue one message; the future holds its triage."""
        ...


class LazyClassifier:
    """Loads the real classifier on a background thread once `start` is called."""

    def __init__(self, load: Callable[[], Classifier]) -> None:
        self._load = load
        self._ready: Future[Classifier] = Future()
        self._thread: threading.Thread | None = None
        self.load_seconds: float | None = None

    def start(self) -> None:
        """Begin loading (once); returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="classifier-load", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        try:
            classifier = self._load()
        except BaseException as exc:  # reported on /health and to every waiting mail
            log.exception("event=classifier_load_failed error=%s", exc)
            self._ready.set_exception(exc)
            return
        self.load_seconds = time.monotonic() - began
        log.info("event=classifier_ready seconds=%.2f", self.load_seconds)
        self._ready.set_result(classifier)

    @property
    def loaded(self) -> bool:
        """Whether the classifier is loaded and ready."""
        return self._ready.done() and self._ready.exception() is None

    @property
    def error(self) -> str | None:
        """Why loading failed, if it did."""
        if not self._ready.done() or self._ready.exception() is None:
            return None
        exc = self._ready.exception()
        return f"{type(exc).__name__}: {exc}"

    def wait(self, timeout: float | None = None) -> Classifier:
        """The loaded classifier (blocks until it is there; raises what loading raised)."""
        self.start()
        return self._ready.result(timeout)

    def classify(self, subject: str, text: str) -> Triage:
        """Triage one message, waiting for the model first (blocks the calling thread)."""
        return self.wait().classify(subject, text)

    async def triage(self, subject: str, text: str) -> Triage:
        """Triage one message without blocking the event loop or holding a thread meanwhile."""
        self.start()
        classifier = await asyncio.wrap_future(self._ready)
        if isinstance(classifier, Submitting):
            return await asyncio.wrap_future(classifier.submit(subject, text))
        return await asyncio.to_thread(classifier.classify, subject, text)

    def close(self) -> None:
        """Stop the loaded classifier's threads, if it has any."""
        if self.loaded:
            close = getattr(self._ready.result(), "close", None)
            if close is not None:
                close()


async def triage_of(classifier: Classifier, subject: str, text: str) -> Triage:
    """Classify from the event loop with whatever the classifier offers."""
    if isinstance(classifier, LazyClassifier):
        return await classifier.triage(subject, text)
    if isinstance(classifier, Submitting):
        return await asyncio.wrap_future(classifier.submit(subject, text))
    return await asyncio.to_thread(classifier.classify, subject, text)


class BackgroundLanguageDetector(LanguageDetector):
    """The language detector, built on first use or by `load` (its models take a second or
    two to build, which start-up should not wait for)."""

    def __init__(self, default: Language = Language.DE) -> None:
        self.default = default
        self._lock = threading.Lock()
        self._built: LanguageDetector | None = None

    def load(self) -> None:
        """Build the detector now (once)."""
        with self._lock:
            if self._built is None:
                self._built = LanguageDetector(self.default)

    def detect(self, text: str) -> Language:
        """The message's language (see LanguageDetector.detect)."""
        if self._built is None:
            self.load()
        assert self._built is not None
        return self._built.detect(text)
