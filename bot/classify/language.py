"""German or English: an offline detector (lingua), limited to the languages we support."""

from __future__ import annotations

from lingua import Language as LinguaLanguage
from lingua import LanguageDetectorBuilder

from bot.domain import Language

_TO_OURS = {LinguaLanguage.GERMAN: Language.DE, LinguaLanguage.ENGLISH: Language.EN}


class LanguageDetector:
    """Builds its models once (about 0.1 s); `detect` then takes well under a millisecond."""

    def __init__(self, default: Language = Language.DE) -> None:
        self.default = default
        self._detector = (
            LanguageDetectorBuilder.from_languages(*_TO_OURS)
            .with_preloaded_language_models()
            .build()
        )

    def detect(self, text: str) -> Language:
        """The message's language; the default when the text has no letters to go on."""
        sample = text[:2000]
        if not any(ch.isalpha() for ch in sample):
            return self.default
        found = self._detector.detect_language_of(sample)
        return _TO_OURS.get(found, self.default) if found is not None else self.default
