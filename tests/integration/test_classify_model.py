"""The real prepared model: German and English, the evaluation split, batching, the CLI,
and a mail that goes through the service with the model in the path."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.classify.commands import Evaluation, evaluate, load_classifier
from bot.classify.corpus import evaluation_sets, load
from bot.classify.encoder import Encoder
from bot.classify.model import ModelClassifier
from bot.classify.prepare import is_prepared
from bot.config import Settings
from bot.domain import Department, Severity
from models.db import Database
from tests.conftest import child_cwd, child_env
from tests.integration.conftest import Clock, make_settings, start_service
from tests.integration.test_email import outage

pytestmark = pytest.mark.slow  # loads the model (once per module: `make test` runs loadfile)

ROOT = Path(__file__).resolve().parents[2]
ENCODER = ROOT / "var" / "models" / "multilingual-e5-small"


def model_settings() -> Settings:
    if not is_prepared(ENCODER):
        if os.environ.get("CI"):
            pytest.fail(f"CI prepares the model (make test does): {ENCODER} is missing")
        pytest.skip("run `intake-bot model prepare` (make test does) to run the model tests")
    # the shipped head, whatever a developer retrained into var/head.json
    return Settings(_env_file=None, encoder=str(ENCODER),
                    classifier_head_file=ROOT / "tests" / "no-retrained-head.json")


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    return evaluate(model_settings(), evaluation_sets())


@pytest.fixture(scope="module")
def classifier() -> Iterator[ModelClassifier]:
    model = load_classifier(model_settings())
    yield model
    model.close()


def test_german_and_english_messages(classifier: ModelClassifier) -> None:
    german = classifier.classify(
        "Webshop komplett ausgefallen",
        "Seit 7 Uhr ist unser Shop nicht erreichbar, alle Bestellungen bleiben liegen.",
    )
    english = classifier.classify(
        "Copy of the October invoice",
        "Hello, could you send us a copy of last month's invoice for our records? Thanks",
    )
    assert (german.department, german.severity) == (Department.TROUBLE, Severity.A)
    assert (english.department, english.severity) == (Department.ACCOUNTING, Severity.C)
    assert german.model == english.model == classifier.head.version
    assert not german.needs_triage


def test_misleading_keywords(classifier: ModelClassifier) -> None:
    # data/README.md: a broken invoice portal is trouble, fetching invoices by API is developer
    portal = classifier.classify("Invoice portal", "The invoice portal returns 500 when I "
                                 "click download, the list itself loads.")
    api = classifier.classify("", "How do I fetch our invoices via your API with a token?")
    assert portal.department is Department.TROUBLE
    assert api.department is Department.DEVELOPER


@pytest.mark.parametrize("part", ["eval1/de", "eval1/en", "eval2/de", "eval2/en", "eval3/de",
                                  "eval3/en"])
def test_every_evaluation_set_meets_the_targets(evaluation: Evaluation, part: str) -> None:
    # issue 25: per set and language, at the shipped threshold
    scores = evaluation.reports[part]
    assert scores.department_f1 >= 0.90, evaluation.text
    assert scores.severity_f1 >= 0.85, evaluation.text
    assert scores.precision_a is not None and scores.precision_a >= 0.90, evaluation.text
    assert scores.accuracy_unflagged is not None and scores.accuracy_unflagged >= 0.95, \
        evaluation.text
    assert scores.flagged <= 0.25, evaluation.text


def test_the_shipped_threshold_is_the_one_the_evaluation_supports(
        evaluation: Evaluation) -> None:
    # the default setting is the lowest threshold at which every language slice of eval1 and
    # eval2 is right 95 % of the time among its unflagged messages, rounded up to 0.01; eval3
    # is not used to choose it (it is reported, and must hold there: the test above)
    chosen = evaluation.threshold_in_every_slice(["eval1", "eval2"])
    assert Settings(_env_file=None).classifier_threshold == math.ceil(chosen * 100) / 100


def test_concurrent_requests_are_batched(classifier: ModelClassifier) -> None:
    texts = [e.text for e in load() if e.split == "E"][:24]
    expected = classifier.classify_many(texts)
    results: dict[int, object] = {}
    before = len(classifier.batches)

    def work(i: int) -> None:
        results[i] = classifier.classify("", texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = [results[i] for i in range(len(texts))]
    assert [(t.department, t.severity) for t in got] == [  # type: ignore[attr-defined]
        (t.department, t.severity) for t in expected]
    assert max(map(len, list(classifier.batches)[before:])) > 1


def test_whatever_waits_is_batched_beyond_a_thread_pool(classifier: ModelClassifier) -> None:
    # The service submits from the event loop: no thread per waiting mail caps the batch.
    texts = [e.text for e in load() if e.split == "E"][:40]
    expected = classifier.classify_many(texts)
    before = len(classifier.batches)
    futures = [classifier.submit("", text) for text in texts]
    got = [future.result(timeout=120) for future in futures]
    assert [(t.department, t.severity) for t in got] == [
        (t.department, t.severity) for t in expected]
    sizes = [len(batch) for batch in list(classifier.batches)[before:]]
    assert max(sizes) > 6
    assert max(sizes) <= classifier.max_batch


class Gated:
    """The real encoder, held at its first batch until `open` is set."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.started = threading.Event()
        self.open = threading.Event()

    def pin_threads(self) -> None:
        self.encoder.pin_threads()

    def embed(self, texts: list[str]) -> np.ndarray[Any, Any]:
        self.started.set()
        assert self.open.wait(timeout=60)
        return self.encoder.embed(texts)


def test_what_waits_is_sorted_by_length_across_batches(classifier: ModelClassifier) -> None:
    # 40 mails wait while the model is busy: with batches of 8 they are taken together, sorted
    # by length, so every batch holds texts no longer than the next batch's.
    gated = Gated(classifier.encoder)
    model = ModelClassifier(gated, classifier.head, max_batch=8)  # type: ignore[arg-type]
    try:
        first = model.submit("", "Mailserver down")
        assert gated.started.wait(timeout=60)
        texts = [e.text for e in load() if e.split == "E"][:40]
        futures = [model.submit("", text) for text in texts]
        gated.open.set()
        first.result(timeout=120)
        for future in futures:
            future.result(timeout=120)
    finally:
        gated.open.set()
        model.close()
    waiting = list(model.batches)[1:]
    assert [len(batch) for batch in waiting] == [8, 8, 8, 8, 8]
    for shorter, longer in zip(waiting, waiting[1:], strict=False):
        assert max(shorter) <= min(longer)  # text lengths


def test_predict_command() -> None:
    settings = model_settings()
    lines = [json.dumps({"subject": "Rechnung doppelt abgebucht",
                         "body": "Hallo, die Novemberrechnung wurde zweimal eingezogen."}),
             "{broken"]
    done = subprocess.run([sys.executable, "-m", "bot", "classify", "predict"],
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          env=child_env({"ENCODER": settings.encoder}), cwd=child_cwd(),
                          timeout=120, check=False)
    first, second = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1
    assert first["department"] == "accounting" and first["language"] == "de"
    assert set(first["confidence"]) == {"department", "severity", "product"}
    assert first["model"].startswith("e5-small-parts-head-")
    assert first["stated_severity"] is None
    assert "line 2" in second["error"]


async def test_mail_is_classified_by_the_model(db: Database, database_url: str,
                                               tmp_path: Path) -> None:
    await db.dispose()
    settings = make_settings(tmp_path, database_url, classifier="model",
                             encoder=model_settings().encoder)
    running = await start_service(settings, Clock())
    try:
        await running.send(outage())
        await running.settle(timeout=180)  # the model loads in the background after start
        [ticket] = await running.tickets()
    finally:
        await running.service.stop()
    assert ticket.model_version is not None
    assert ticket.model_version.startswith("e5-small-parts-head")
    assert (ticket.predicted_department, ticket.predicted_severity) == ("trouble", "A")


def test_a_stated_a_without_impact_is_not_priced(classifier: ModelClassifier) -> None:
    # senders lie: "Schweregrad A" on a cosmetic issue must not become an A quote; the model is
    # sure of its C, so no agent is asked either (the stated A is recorded with the triage)
    typo = classifier.classify("Schweregrad A: Tippfehler",
                               "Auf unserer Login-Seite steht 'Pasword' statt 'Passwort'.")
    outage = classifier.classify("Severity A - shop down",
                                 "Since 7 am our web shop is offline, no customer can order.")
    assert (typo.stated_severity, typo.severity, typo.needs_triage) == (Severity.A, Severity.C,
                                                                        False)
    assert (outage.stated_severity, outage.severity) == (Severity.A, Severity.A)


SHOP_DOWN = "Seit heute Morgen ist unser Shop nicht erreichbar, alle Bestellungen bleiben liegen."


def test_a_lower_stated_severity_counts(classifier: ModelClassifier) -> None:
    slow = classifier.classify("Schweregrad C", SHOP_DOWN)
    assert (slow.stated_severity, slow.severity, slow.needs_triage) == (Severity.C, Severity.C,
                                                                        False)


def test_a_low_priority_field_does_not_lower_a_described_outage(
        classifier: ModelClassifier) -> None:
    # a priority is often a ticket system's field or default: the A stands, an agent confirms
    exported = classifier.classify("Ticket 4711", "Priorität: niedrig\nStatus: neu\n" + SHOP_DOWN)
    assert (exported.stated_severity, exported.severity, exported.needs_triage) == (
        Severity.C, Severity.A, True)
