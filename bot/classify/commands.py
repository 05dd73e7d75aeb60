"""`intake-bot model prepare` and `intake-bot classify predict|train|eval|split`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from bot.classify.corpus import Example, load
from bot.classify.evaluate import Scores, confusion_text, score, table
from bot.classify.head import HEAD_FILE, TASKS, Head
from bot.classify.model import ModelClassifier
from bot.config import Settings
from bot.domain import Department, Language, Severity
from bot.errors import ConfigError, UserError


def model_prepare(settings: Settings, target: str | None, if_missing: bool) -> str:
    """Build the offline encoder directory."""
    from bot.classify.prepare import PrepareError, is_prepared, prepare

    path = Path(target or settings.encoder)
    if if_missing and is_prepared(path):
        return f"model already prepared in {path}"
    try:
        return prepare(path)
    except PrepareError as exc:
        raise UserError(f"cannot prepare the model: {exc}") from exc


def load_classifier(settings: Settings) -> ModelClassifier:
    """The trained classifier as configured; UserError with a sentence if it cannot load."""
    from bot.classify.encoder import Encoder, EncoderMissing

    try:
        head = Head.load()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the classifier head {HEAD_FILE}: {exc}") from exc
    try:
        encoder = Encoder(settings.encoder, max_tokens=settings.classifier_max_tokens,
                          threads=settings.torch_threads, quantize=settings.classifier_quantize)
    except EncoderMissing as exc:
        raise ConfigError(str(exc)) from exc
    return ModelClassifier(encoder, head, threshold=settings.classifier_threshold)


def predict(settings: Settings, source: TextIO, out: TextIO) -> int:
    """JSON lines {"subject", "body"} in, one triage per line out; bad lines get an error."""
    from bot.intake.language import LanguageDetector

    classifier = load_classifier(settings)
    detector = LanguageDetector()
    failed = False
    for number, line in enumerate(source, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            subject, body = str(item.get("subject") or ""), str(item.get("body") or "")
        except (json.JSONDecodeError, AttributeError):
            out.write(json.dumps({"error": f"line {number}: expected a JSON object with "
                                           "subject and body."}) + "\n")
            failed = True
            continue
        triage = classifier.classify(subject, body)
        out.write(json.dumps({
            "department": triage.department.value, "severity": triage.severity.value,
            "product": triage.product, "language": detector.detect(f"{subject}\n{body}").value,
            "confidence": triage.confidence, "needs_triage": triage.needs_triage,
            "model": triage.model,
        }) + "\n")
    classifier.close()
    return 1 if failed else 0


def read_jsonl(path: Path) -> list[Example]:
    """Examples from a JSONL file with subject, body, department, severity, product, language."""
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            examples.append(Example(
                id=f"{path.name}:{number}", language=Language(item["language"]),
                department=Department(item["department"]), severity=Severity(item["severity"]),
                product=str(item["product"]), subject=str(item.get("subject", "")),
                body=str(item.get("body", "")), split="E",
            ))
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            raise UserError(f"{path}:{number}: not a labelled example ({exc})") from exc
    return examples


def evaluate(settings: Settings, examples: list[Example],
             classifier: ModelClassifier | None = None) -> tuple[str, dict[str, Scores]]:
    """Scores per task, overall and per language, plus confusion matrices, as text."""
    owned = classifier is None
    classifier = classifier or load_classifier(settings)
    triages = classifier.classify_many([e.text for e in examples])
    if owned:
        classifier.close()
    results: dict[tuple[str, str], Scores] = {}
    for task in TASKS:
        labels = classifier.head.tasks[task].labels
        truth = [str(getattr(e, task)) for e in examples]
        predicted = [str(getattr(t, task)) for t in triages]
        results[(task, "all")] = score(truth, predicted, labels)
        for language in Language:
            idx = [i for i, e in enumerate(examples) if e.language == language]
            if idx:
                results[(task, language.value)] = score(
                    [truth[i] for i in idx], [predicted[i] for i in idx], labels)
    text = [f"model {classifier.model}, {len(examples)} messages", table(results), ""]
    text += [confusion_text(task, results[(task, "all")]) + "\n" for task in TASKS]
    flat = {f"{task}/{part}": s for (task, part), s in results.items()}
    return "\n".join(text), flat


def train(settings: Settings, extra: Iterable[Example] = ()) -> str:
    """Reproduce the head from data/ (training split only), plus any confirmed triage."""
    from bot.classify.encoder import Encoder
    from bot.classify.train import train as fit

    corpus = load()
    training = [e for e in corpus if e.split == "T"] + list(extra)
    encoder = Encoder(settings.encoder, max_tokens=settings.classifier_max_tokens,
                      threads=settings.torch_threads)
    trained = fit(encoder, training, encoder_id="intfloat/multilingual-e5-small")
    classifier = ModelClassifier(encoder, trained.head, threshold=settings.classifier_threshold)
    report, flat = evaluate(settings, [e for e in corpus if e.split == "E"], classifier)
    classifier.close()
    trained.head.metrics = {k: {"n": s.n, "accuracy": round(s.accuracy, 3),
                                "macro_f1": round(s.macro_f1, 3)} for k, s in flat.items()}
    trained.head.save()
    return (f"trained {trained.head.version} on {len(training)} messages "
            f"(temperatures calibrated on {trained.calibration_size} held out); "
            f"wrote {HEAD_FILE}\n\n{report}")

