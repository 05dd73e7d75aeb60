"""Training copies in other voices (bot/classify/voices.py): what each voice does to a message."""

from __future__ import annotations

import random

from bot.classify.voices import FOOTERS, QUOTES, other_voice
from bot.domain import Language

SUBJECT, BODY = "Shop offline", "Seit 6 Uhr ist unser Shop nicht erreichbar. Bitte prüfen Sie das."


def copies(language: Language = Language.DE, n: int = 30, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [other_voice(SUBJECT, BODY, language, rng) for _ in range(n)]


def test_the_mobile_voice_drops_subject_umlauts_and_capitals() -> None:
    mobile = [c for c in copies() if not c.startswith(SUBJECT)]
    assert mobile
    assert set(mobile) == {"seit 6 uhr ist unser shop nicht erreichbar. bitte prufen sie das."}


def test_a_footer_or_a_quote_follows_the_whole_message() -> None:
    signed = [c for c in copies() if c.startswith(f"{SUBJECT}\n{BODY}\n\n")]
    tails = {c.removeprefix(f"{SUBJECT}\n{BODY}\n\n") for c in signed}
    assert tails <= {*FOOTERS[Language.DE], QUOTES[Language.DE]}
    assert QUOTES[Language.DE] in tails
    assert len(tails & set(FOOTERS[Language.DE])) >= 2


def test_english_messages_get_english_footers() -> None:
    tails = {c.split("\n\n", 1)[1] for c in copies(Language.EN) if "\n\n" in c}
    assert tails <= {*FOOTERS[Language.EN], QUOTES[Language.EN]}


def test_the_same_seed_gives_the_same_copies() -> None:
    assert copies(seed=7) == copies(seed=7)
    assert copies(seed=7) != copies(seed=8)
