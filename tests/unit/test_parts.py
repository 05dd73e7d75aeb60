"""A message's sentences beside the whole text (bot/classify/parts.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bot.classify import parts


def test_sentences_and_lines_of_substance() -> None:
    text = ("Shop offline\nHallo,\nseit 6 Uhr geht keine Bestellung durch. Alles steht!\n"
            "> Am 3.12. schrieb Support: alles ok\nGruß Jan")
    assert parts.split(text) == ["Shop offline", "seit 6 Uhr geht keine Bestellung durch.",
                                 "Alles steht!"]


def test_quoted_history_is_left_out() -> None:
    assert parts.split("ok danke\n> Ihr Server ist seit 3 Stunden down") == ["ok danke"]


def test_a_short_text_is_its_own_part() -> None:
    assert parts.split("hilfe!!") == ["hilfe!!"]


def test_long_chains_are_cut() -> None:
    text = "\n".join(f"Sentence number {n} of the chain." for n in range(40))
    assert len(parts.split(text)) == parts.MAX_PARTS


def letters(texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A stand-in encoder: counts of a, b, c per text, normalised."""
    rows = np.array([[t.count("a"), t.count("b"), t.count("c")] for t in texts], np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(min=1e-12)


def test_text_pooling_is_the_whole_text() -> None:
    x = parts.features(letters, ["aaab"], parts.TEXT)
    assert x.tolist() == letters(["aaab"]).tolist()


def test_parts_keep_a_sentence_that_stands_out() -> None:
    text = "aaaaaaaaaaaaaaaa aaaa. cccccccccccc cc."  # two sentences: all a, all c
    x = parts.features(letters, [text], parts.PARTS)
    assert x.shape == (1, 9)
    assert x[0, :3].tolist() == pytest.approx(letters([text])[0].tolist())  # the whole text
    assert x[0, 3:6].tolist() == pytest.approx([0.7071, 0.0, 0.7071], abs=1e-4)  # the maximum


def test_parts_mean_counts_each_sentence_once() -> None:
    text = "aaaaaaaaaaaaaaaa aaaa. cccccccccccc cc. bbbbbbbbbbbb bb."
    x = parts.features(letters, [text], parts.PARTS)
    assert x[0, 6:].tolist() == pytest.approx([0.5774, 0.5774, 0.5774], abs=1e-4)


def test_rows_of_several_texts_are_their_own() -> None:
    x = parts.features(letters, ["aaaaaaaaaaaaaa.", "bbbbbbbbbbbbbb."], parts.PARTS)
    assert x.tolist() == [[1, 0, 0, 1, 0, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0, 0, 1, 0]]


def test_rows_stay_in_order_through_batches() -> None:
    texts = ["c" * 30, "a" * 20, "b" * 25]
    x = parts.batched(letters, batch=1)(texts)
    assert x.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]


def test_an_unknown_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown pooling"):
        parts.features(letters, ["a"], "cls")


def test_a_sentence_is_embedded_once() -> None:
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        calls.append(texts)
        return letters(texts)

    texts = ["bbbbbbbbbbbbbbbbbbbb", "Hello there team\nbbbbbbbbbbbbbbbbbbbb"]
    x = parts.features(counting, texts, parts.PARTS)
    assert calls == [texts, ["Hello there team"]]
    assert x[0].tolist() == [0, 1, 0, 0, 1, 0, 0, 1, 0]
