"""The triage corpus (data/) and the pure parts of the classifier: split, format, scores."""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pytest

from bot.classify.corpus import CorpusError, load, parse_line
from bot.classify.evaluate import score
from bot.classify.head import TASKS, Head
from bot.classify.prepare import dequantise_q4
from bot.domain import Department, Language, Severity


@pytest.fixture(scope="module")
def corpus() -> list:  # type: ignore[type-arg]
    return load()


def test_size_and_balance(corpus: list) -> None:  # type: ignore[type-arg]
    assert len(corpus) >= 1500
    languages = Counter(e.language for e in corpus)
    assert abs(languages[Language.DE] - languages[Language.EN]) < 0.1 * len(corpus)
    for language in Language:
        part = [e for e in corpus if e.language == language]
        assert {e.department for e in part} == set(Department)
        assert {e.severity for e in part} == set(Severity)
        assert {e.product for e in part} == {"dehosted", "m365"}
        assert min(Counter(e.department for e in part).values()) >= 140
        assert min(Counter(e.severity for e in part).values()) >= 90


def test_no_duplicate_messages(corpus: list) -> None:  # type: ignore[type-arg]
    texts = Counter(e.text.lower() for e in corpus)
    assert [t for t, n in texts.items() if n > 1] == []


def test_evaluation_split_is_stratified(corpus: list) -> None:  # type: ignore[type-arg]
    evaluation = [e for e in corpus if e.split == "E"]
    assert 0.15 * len(corpus) <= len(evaluation) <= 0.25 * len(corpus)
    for language in Language:
        for department in Department:
            stratum = [e for e in corpus if (e.language, e.department) == (language, department)]
            share = sum(e.split == "E" for e in stratum) / len(stratum)
            assert 0.1 <= share <= 0.3, (language, department, share)


def test_the_shipped_head_never_saw_the_evaluation_split(corpus: list) -> None:  # type: ignore[type-arg]
    from bot.classify.corpus import fingerprint

    head = Head.load()
    assert head.data_fingerprint == fingerprint([e for e in corpus if e.split == "T"])
    assert head.data_fingerprint != fingerprint(corpus)
    assert set(head.tasks) == set(TASKS)
    assert head.tasks["department"].labels == sorted(d.value for d in Department)


def test_line_format() -> None:
    from pathlib import Path

    path = Path("data/de/trouble.txt")
    example = parse_line(path, 7, "T A m365 | | alles weg\\nbitte helfen")
    assert (example.subject, example.body) == ("", "alles weg\nbitte helfen")
    assert example.product == "m365" and example.severity is Severity.A
    with pytest.raises(CorpusError, match="trouble.txt:3"):
        parse_line(path, 3, "X A dh | no | split")


def test_q4_dequantisation_of_one_block() -> None:
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((lo | (hi << 4)) for lo, hi in zip(range(16), range(15, -1, -1), strict=True))
    values = dequantise_q4(scale + nibbles, 32)
    assert values[:16].tolist() == [(n - 8) * 0.5 for n in range(16)]
    assert values[16:].tolist() == [(n - 8) * 0.5 for n in range(15, -1, -1)]
    assert struct.calcsize("<e") == 2


def test_macro_f1_and_confusion() -> None:
    s = score(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert s.accuracy == 0.75
    assert s.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert s.confusion == {"a": {"a": 1, "b": 1}, "b": {"a": 0, "b": 2}}


def test_translations_share_a_group_and_a_side() -> None:
    from pathlib import Path

    from bot.classify.corpus import stratified_split, translation_groups

    de = [parse_line(Path("data/de/trouble.txt"), n, f"T A dh | s{n} | b{n}") for n in (1, 2)]
    en = [parse_line(Path("data/en/trouble.txt"), n, f"T A dh | s{n} | b{n}") for n in (1, 2)]
    examples = [*de, *en]
    vectors = np.array([[1, 0], [0, 1], [0.99, 0.14], [0.6, 0.8]], dtype=np.float32)
    groups = translation_groups(examples, vectors)
    assert groups == {en[0].id: de[0].id}  # the second English one is no translation
    splits = stratified_split(examples, groups, every=2)
    assert splits[en[0].id] == splits[de[0].id]


@pytest.mark.parametrize("name", ["eval2", "eval3"])
def test_training_never_reads_the_later_evaluation_sets(corpus: list, name: str) -> None:  # type: ignore[type-arg]
    from bot.classify import corpus as module
    from bot.classify.commands import training_set
    from bot.classify.corpus import fingerprint

    held_out = getattr(module, f"load_{name}")()
    assert len(held_out) >= 100
    assert {e.split for e in held_out} == {"E"}
    assert {e.id.split("/")[0] for e in held_out} == {name}
    texts = {e.text for e in held_out}
    assert [e.id for e in corpus if e.text in texts] == []  # neither file nor copy in data/*/
    # what `classify train` and `classify tune` read (tune.tune also refuses E examples itself)
    assert [e.id for e in training_set() if e.text in texts] == []
    assert Head.load().data_fingerprint != fingerprint(
        [e for e in corpus if e.split == "T"] + held_out)
    # the shipped head's fingerprint is the training split alone, so no eval text was in it
    assert Head.load().data_fingerprint == fingerprint(training_set())


def test_the_second_set_covers_every_label(corpus: list) -> None:  # type: ignore[type-arg]
    from bot.classify.corpus import load_eval2

    second = load_eval2()
    for language in Language:
        part = [e for e in second if e.language == language]
        assert {e.department for e in part} == set(Department)
        assert min(Counter(e.severity for e in part).values()) >= 8


def test_the_third_set_has_its_size_and_every_label() -> None:
    from bot.classify.corpus import evaluation_sets, load_eval3

    third = load_eval3()
    assert {e.split for e in third} == {"E"}
    for language in Language:
        part = [e for e in third if e.language == language]
        assert len(part) == 120, language
        assert Counter(e.department for e in part) == {d: 30 for d in Department}
        assert {e.severity for e in part} == set(Severity)
        assert {e.product for e in part} == {"dehosted", "m365"}
    assert len({e.text.lower() for e in third}) == len(third)
    assert [e.id for e in evaluation_sets()["eval3"]] == [e.id for e in third]


@pytest.mark.parametrize("name", ["eval2", "eval3"])
def test_train_refuses_evaluation_examples(name: str) -> None:
    from bot.classify import corpus as module
    from bot.classify.train import train

    with pytest.raises(ValueError, match="never be used for training"):
        train(None, getattr(module, f"load_{name}")()[:2], encoder_id="x")  # type: ignore[arg-type]


def test_precision_of_a_and_calibration_error() -> None:
    from bot.classify.evaluate import expected_calibration_error, precision_of

    assert precision_of(["A", "B", "A", "C"], ["A", "A", "A", "C"], "A") == pytest.approx(2 / 3)
    assert precision_of(["A"], ["B"], "A") is None
    # two bins: 0.95 (right, right) and 0.55 (right, wrong): |1-0.95|/2 + |0.5-0.55|/2
    ece = expected_calibration_error([0.95, 0.95, 0.55, 0.55], [True, True, True, False])
    assert ece == pytest.approx(0.05)


def test_threshold_is_the_lowest_that_reaches_the_target() -> None:
    from bot.classify.evaluate import choose_threshold

    confidence = [0.9, 0.8, 0.7, 0.6, 0.5]
    correct = [True, True, True, False, False]
    chosen = choose_threshold(confidence, correct, target=0.95)
    assert chosen.threshold == 0.7
    assert chosen.flagged == pytest.approx(0.4)
    assert chosen.accuracy_kept == 1.0


def test_a_retrained_head_is_used_only_if_accepted_over_the_shipped_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.classify.commands import choose_head
    from bot.config import Settings

    shipped = Head.load()
    path = tmp_path / "head.json"
    settings = Settings(_env_file=None, classifier_head_file=path)
    assert choose_head(settings).version == shipped.version  # none written yet
    retrained = Head.load()
    retrained.data_fingerprint = "f" * 16
    retrained.metrics = {"accepted_over": "e5-small-head-00000000"}  # against another head
    retrained.save(path)
    assert choose_head(settings).version == shipped.version
    retrained.metrics = {"accepted_over": shipped.version}
    retrained.save(path)
    assert choose_head(settings).version == "e5-small-parts-head-ffffffff"
    path.write_text("{broken", encoding="utf-8")
    assert choose_head(settings).version == shipped.version


def test_not_worse_compares_every_slice() -> None:
    from bot.classify.evaluate import SliceReport, not_worse

    def report(sev: float, prec: float | None) -> SliceReport:
        return SliceReport(n=60, department_f1=0.95, severity_f1=sev, precision_a=prec,
                           predicted_a=10, ece=0.05, flagged=0.2, accuracy_unflagged=0.95)

    old = {"eval1/de": report(0.90, 0.95), "eval2/en": report(0.85, 0.90)}
    assert not_worse({"eval1/de": report(0.905, 0.95), "eval2/en": report(0.845, 0.9)}, old) == []
    assert not_worse({"eval1/de": report(0.90, 0.95), "eval2/en": report(0.80, 0.9)}, old) == [
        "eval2/en: severity_f1 0.800 < 0.850"]
    assert not_worse({"eval1/de": report(0.90, 0.80), "eval2/en": report(0.85, 0.9)}, old) == [
        "eval1/de: precision_a 0.800 < 0.950"]


def test_a_threshold_picked_on_one_set_is_reported_on_the_other() -> None:
    from bot.classify.evaluate import at_threshold, crossed_thresholds

    applied = at_threshold([0.9, 0.8, 0.5, 0.4], [True, False, True, False], 0.7)
    assert (applied.accuracy_kept, applied.flagged) == (0.5, 0.5)
    pooled = {"a/de": [(0.9, True), (0.8, True), (0.6, False)],  # picks 0.8, flags a third
              "b/de": [(0.95, True), (0.85, False), (0.7, False), (0.5, True)]}
    lines = crossed_thresholds(pooled, [(("a",), ("b",))]).splitlines()
    assert len(lines) == 3
    assert lines[2].split() == ["de", "a", "0.800", "33%", "1.000", "b", "50%", "0.500"]


def test_no_evaluation_text_reaches_what_training_reads() -> None:
    from bot.classify.commands import training_set
    from bot.classify.corpus import evaluation_sets

    training = {e.text.lower() for e in training_set()}
    for name, examples in evaluation_sets().items():
        assert [e.id for e in examples if e.text.lower() in training] == [], name
