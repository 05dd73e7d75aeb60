"""German or English: an offline detector (lingua), limited to the languages we support."""

from __future__ import annotations

import functools

from lingua import Language as LinguaLanguage
from lingua import LanguageDetector as LinguaDetector
from lingua import LanguageDetectorBuilder

from bot.domain import Language

_TO_OURS = {LinguaLanguage.GERMAN: Language.DE, LinguaLanguage.ENGLISH: Language.EN}


class LanguageDetector:
    """Shares the models built once per process (about a second); `detect` then takes well
    under a millisecond."""

    def __init__(self, default: Language = Language.DE) -> None:
        self.default = default
        self._detector = _lingua()

    def detect(self, text: str) -> Language:
        """The message's language; the default when the text has no letters to go on."""
        sample = text[:2000]
        if not any(ch.isalpha() for ch in sample):
            return self.default
        found = self._detector.detect_language_of(sample)
        return _TO_OURS.get(found, self.default) if found is not None else self.default


@functools.cache
def _lingua() -> LinguaDetector:
    """lingua's detector, built once per process: building takes about a second of CPU with the
    interpreter held, and every detector (each service in a process, each command) reads the
    same immutable models."""
    return (LanguageDetectorBuilder.from_languages(*_TO_OURS)
            .with_preloaded_language_models().build())
