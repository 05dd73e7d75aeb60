"""`intake-bot model prepare` and `intake-bot classify predict|train|eval|split`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot.classify.cache import Embedder, EmbeddingCache
from bot.classify.corpus import Example, evaluation_sets, fingerprint, load
from bot.classify.decide import decide_many
from bot.classify.evaluate import (
    SliceReport,
    Threshold,
    choose_threshold,
    confusion_text,
    crossed_thresholds,
    every_slice_text,
    every_slice_threshold,
    expected_calibration_error,
    not_worse,
    precision_of,
    score,
    slice_table,
)
from bot.classify.head import HEAD_FILE, Head
from bot.classify.model import ModelClassifier
from bot.classify.parts import TEXT, features
from bot.classify.train import embedder
from bot.classify.tune import TuneConfig
from bot.config import Settings
from bot.domain import Department, Language, Severity, Triage
from bot.errors import ConfigError, UserError

if TYPE_CHECKING:
    from bot.classify.encoder import Encoder

log = logging.getLogger(__name__)


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


def choose_head(settings: Settings) -> Head:
    """The shipped head, or the retrained one if it was accepted against this shipped head."""
    try:
        shipped = Head.load()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read the classifier head {HEAD_FILE}: {exc}") from exc
    path = Path(settings.classifier_head_file)
    if not path.exists():
        return shipped
    try:
        retrained = Head.load(path)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("event=retrained_head_ignored file=%s reason=%r", path, str(exc))
        return shipped
    if retrained.metrics.get("accepted_over") != shipped.version:
        log.warning("event=retrained_head_ignored file=%s reason=not_compared_with_%s",
                    path, shipped.version)
        return shipped
    log.info("event=retrained_head_used file=%s model=%s", path, retrained.version)
    return retrained


def tuned_head(settings: Settings, shipped: Head) -> Head:
    """The head over the tuned encoder, if its files fit the prepared encoder, each other and
    the shipped head's training data; AdaptersStale (with the reason) otherwise."""
    from bot.classify import tune as tuning

    adapters = tuning.load(Path(settings.classifier_adapters_file), Path(settings.encoder))
    try:
        head = Head.load(Path(settings.classifier_tuned_head_file))
    except (OSError, ValueError, KeyError) as exc:
        raise tuning.AdaptersStale(f"cannot read {settings.classifier_tuned_head_file}: "
                                   f"{exc}") from exc
    if head.adapters != adapters.digest:
        raise tuning.AdaptersStale(f"{settings.classifier_tuned_head_file} was fitted over "
                                   f"other adapters ({head.adapters[:8] or 'none'}, the file "
                                   f"holds {adapters.digest[:8]})")
    trained_on = adapters.metadata.get("data_fingerprint")
    if trained_on != shipped.data_fingerprint or head.data_fingerprint != trained_on:
        raise tuning.AdaptersStale(f"tuned on training data {trained_on}, the shipped head on "
                                   f"{shipped.data_fingerprint}: run `classify tune` again")
    return head


def choose_model(settings: Settings) -> tuple[Encoder, Head]:
    """The encoder and head that serve: the tuned pair when CLASSIFIER_TUNED is on and its
    files are sound, else the prepared encoder with `choose_head` (a log line says why)."""
    from bot.classify.encoder import Encoder, EncoderMissing
    from bot.classify.tune import AdaptersStale

    head = choose_head(settings)
    adapters: Path | None = None
    if settings.classifier_tuned and head.version != Head.load().version:
        log.warning("event=tuned_model_ignored reason=retrained_head_%s", head.version)
    elif settings.classifier_tuned:
        try:
            head = tuned_head(settings, head)
            adapters = Path(settings.classifier_adapters_file)
        except AdaptersStale as exc:
            log.warning("event=tuned_model_ignored reason=%r model=%s", str(exc), head.version)
    try:
        encoder = Encoder(settings.encoder, max_tokens=settings.classifier_max_tokens,
                          threads=settings.torch_threads, quantize=settings.classifier_quantize,
                          adapters=adapters)
    except EncoderMissing as exc:
        raise ConfigError(str(exc)) from exc
    if adapters is not None:
        log.info("event=tuned_model_used model=%s", head.version)
    return encoder, head


def load_classifier(settings: Settings) -> ModelClassifier:
    """The trained classifier as configured; UserError with a sentence if it cannot load."""
    encoder, head = choose_model(settings)
    return ModelClassifier(encoder, head, threshold=settings.classifier_threshold)


def predict(settings: Settings, source: TextIO, out: TextIO) -> int:
    """JSON lines {"subject", "body"} in, one triage per line out; bad lines get an error."""
    from bot.classify.language import LanguageDetector

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
            "stated_severity": triage.stated_severity.value if triage.stated_severity else None,
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


# Thresholds picked on some evaluation sets are reported on the others: a threshold picked on
# the very set it is scored on flatters itself.
CROSSED = ((("eval1", "eval2"), ("eval3",)), (("eval3",), ("eval1", "eval2")))


@dataclass
class Evaluation:
    """`classify eval`'s figures: per set and language, and the threshold the sets support."""

    reports: dict[str, SliceReport]
    text: str
    threshold: Threshold
    # per set: (confidence, severity right) of each message, for a threshold over some sets
    pooled: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)

    # per set and language ("eval1/de"): (confidence, severity right) of each message
    slices: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)

    def threshold_over(self, names: Iterable[str]) -> Threshold:
        """The 95 % threshold over the sets `names` only."""
        pooled = [p for name in names for p in self.pooled[name]]
        return choose_threshold([c for c, _ in pooled], [ok for _, ok in pooled], target=0.95)

    def threshold_in_every_slice(self, names: Iterable[str]) -> float:
        """The lowest threshold (in steps of 0.01) at which each language slice of the sets
        `names` is right 95 % of the time among its unflagged messages."""
        return every_slice_threshold(self.slices, names)


def _encoder(settings: Settings) -> Embedder:
    from bot.classify.encoder import Encoder, EncoderMissing

    try:
        return Encoder(settings.encoder, max_tokens=settings.classifier_max_tokens,
                       threads=settings.torch_threads, quantize=settings.classifier_quantize)
    except EncoderMissing as exc:
        raise ConfigError(str(exc)) from exc


def evaluate(settings: Settings, sets: dict[str, list[Example]], *, head: Head | None = None,
             encoder: Embedder | None = None, cache: EmbeddingCache | None = None) -> Evaluation:
    """Scores per set and language at the configured threshold, confusions, and the threshold
    at which the unflagged severities of all sets together are right 95 % of the time."""
    if head is None and encoder is None:
        encoder, head = choose_model(settings)
    head = head or choose_head(settings)
    encoder = encoder or _encoder(settings)
    cache = cache or EmbeddingCache()
    threshold = settings.classifier_threshold
    reports: dict[str, SliceReport] = {}
    per_set: dict[str, list[tuple[float, bool]]] = {}
    by_language: dict[str, list[tuple[float, bool]]] = {}
    text = [f"model {head.version}, threshold {threshold}"]
    for name, examples in sets.items():
        texts = [e.text for e in examples]
        x = features(embedder(encoder, cache), texts, head.pooling)
        final = decide_many(head, x, texts, threshold=threshold)
        layer = head.tasks["severity"]
        probs = layer.probabilities(layer.inputs(x, texts))
        raw = [layer.labels[i] for i in probs.argmax(axis=1)]
        for language in Language:
            idx = [i for i, e in enumerate(examples) if e.language == language]
            if idx:
                reports[f"{name}/{language.value}"] = _slice(
                    [examples[i] for i in idx], [final[i] for i in idx],
                    [raw[i] for i in idx], probs[idx].max(axis=1).tolist())
        per_set[name] = [(_flag_confidence(t, threshold), t.severity == e.severity)
                         for e, t in zip(examples, final, strict=True)]
        for language in Language:
            by_language[f"{name}/{language.value}"] = [
                p for p, e in zip(per_set[name], examples, strict=True)
                if e.language == language]
        truth = [str(e.severity) for e in examples]
        text.append(confusion_text(f"{name} severity",
                                   score(truth, [str(t.severity) for t in final], "ABC")))
        text.append(confusion_text(f"{name} department", score(
            [str(e.department) for e in examples], [str(t.department) for t in final],
            list(Department))))
    pooled = [p for name in sets for p in per_set[name]]
    chosen = choose_threshold([c for c, _ in pooled], [ok for _, ok in pooled], target=0.95)
    text.insert(1, slice_table(reports))
    text.insert(2, f"threshold for 95 % right among unflagged (all sets): {chosen.threshold:.3f},"
                   f" flags {chosen.flagged:.0%} (right {chosen.accuracy_kept:.3f})\n")
    if {"eval1", "eval2", "eval3"} <= set(sets):
        text.insert(3, crossed_thresholds(by_language, CROSSED) + "\n")
        text.insert(4, every_slice_text(by_language) + "\n")
    return Evaluation(reports=reports, text="\n".join(text), threshold=chosen, pooled=per_set,
                      slices=by_language)


def _flag_confidence(triage: Triage, threshold: float) -> float:
    """The confidence a threshold is compared with; 0 for a ticket a rule flags although the
    model is sure (a priority field below a sure A), which no threshold leaves unflagged."""
    confidence = min(triage.confidence["department"], triage.confidence["severity"])
    return 0.0 if triage.needs_triage and confidence >= threshold else confidence


def _slice(examples: list[Example], final: list[Triage], raw: list[str],
           confidence: list[float]) -> SliceReport:
    truth_sev = [str(e.severity) for e in examples]
    final_sev = [str(t.severity) for t in final]
    kept = [t.severity == e.severity for e, t in zip(examples, final, strict=True)
            if not t.needs_triage]
    return SliceReport(
        n=len(examples),
        department_f1=score([str(e.department) for e in examples],
                            [str(t.department) for t in final], list(Department)).macro_f1,
        severity_f1=score(truth_sev, final_sev, list(Severity)).macro_f1,
        precision_a=precision_of(truth_sev, final_sev, "A"),
        predicted_a=final_sev.count("A"),
        ece=expected_calibration_error(confidence, [t == p for t, p in zip(truth_sev, raw,
                                                                         strict=True)]),
        flagged=sum(t.needs_triage for t in final) / len(final),
        accuracy_unflagged=sum(kept) / len(kept) if kept else None,
    )


def training_set(extra: Iterable[Example] = ()) -> list[Example]:
    """What `classify train` learns from: the corpus's training split plus `extra`."""
    examples = [e for e in load() if e.split == "T"] + list(extra)
    if any(e.split != "T" for e in examples):
        raise UserError("an evaluation example was about to be trained on")
    return examples


def train(settings: Settings, extra: Iterable[Example] = ()) -> tuple[str, int]:
    """Reproduce the shipped head from data/ (training split only); with `extra` (agents'
    confirmed triage) write a retrained head to CLASSIFIER_HEAD_FILE instead, only if it does
    not score worse than the shipped head on the fixed evaluation sets."""
    from bot.classify.train import train as fit

    extra = list(extra)
    training = training_set(extra)
    encoder, cache = _encoder(settings), EmbeddingCache()
    trained = fit(encoder, training, encoder_id="intfloat/multilingual-e5-small", cache=cache)
    sets = evaluation_sets()
    result = evaluate(settings, sets, head=trained.head, encoder=encoder, cache=cache)
    trained.head.metrics = {k: asdict(r) for k, r in result.reports.items()}
    summary = (f"trained {trained.head.version} on {len(training)} messages "
               f"({len(extra)} confirmed by agents; temperatures calibrated on "
               f"{trained.calibration_size} held out)")
    if not extra:
        trained.head.save()
        return f"{summary}; wrote {HEAD_FILE}\n\n{result.text}", 0
    shipped = Head.load()
    before = evaluate(settings, sets, head=shipped, encoder=encoder, cache=cache)
    worse = not_worse(result.reports, before.reports)
    target = Path(settings.classifier_head_file)
    if worse:
        return (f"{summary}; NOT written: it scores worse than the shipped "
                f"{shipped.version} on " + "; ".join(worse) + f"\n\n{result.text}"), 1
    trained.head.metrics["accepted_over"] = shipped.version
    target.parent.mkdir(parents=True, exist_ok=True)
    trained.head.save(target)
    return (f"{summary}; not worse than the shipped {shipped.version} on the fixed evaluation "
            f"sets: wrote {target} (used after a restart)\n\n{result.text}"), 0


def tune_encoder(settings: Settings, config: TuneConfig, out: Path,
                 extra: Iterable[Example] = (), *, refit: bool = False) -> tuple[str, int]:
    """`classify tune`: adapters on the encoder's top layers and a head refitted over them,
    written to `out`, with the scores beside the shipped head's on every evaluation slice.
    With `refit`, the adapters already in `out` are kept and only the head is fitted again."""
    import time

    from bot.classify import tune as tuning
    from bot.classify.encoder import Encoder, EncoderMissing
    from bot.classify.train import train as fit

    began = time.monotonic()
    extra = list(extra)
    training = training_set(extra)
    try:
        base = Encoder(settings.encoder, max_tokens=settings.classifier_max_tokens,
                       threads=settings.torch_threads)
    except EncoderMissing as exc:
        raise ConfigError(str(exc)) from exc
    if base.pieces is None:
        raise UserError("classify tune needs the prepared encoder directory (ENCODER)")
    shipped = Head.load()
    adapters = out / tuning.ADAPTERS_FILE.name
    if refit:
        try:
            tuned = tuning.load(adapters, Path(settings.encoder))
        except tuning.AdaptersStale as exc:
            raise UserError(f"cannot refit the head: {exc}") from exc
        if tuned.metadata.get("data_fingerprint") != fingerprint(training):
            raise UserError(f"{adapters} was tuned on other training data: run `classify tune`")
    else:
        tuned = tuning.tune(base, training, shipped, config, encoder_dir=Path(settings.encoder))
        out.mkdir(parents=True, exist_ok=True)
        tuning.save(tuned, adapters)
    tuned_encoder = Encoder(settings.encoder, max_tokens=settings.classifier_max_tokens,
                            threads=settings.torch_threads, adapters=adapters)
    cache = EmbeddingCache()
    # the adapters were trained on the whole text's pooling (tune.py): the head reads that too
    trained = fit(tuned_encoder, training, encoder_id="intfloat/multilingual-e5-small",
                  cache=cache, pooling=TEXT)
    trained.head.adapters = tuned.digest
    sets = evaluation_sets()
    after = evaluate(settings, sets, head=trained.head, encoder=tuned_encoder, cache=cache)
    before = evaluate(settings, sets, head=shipped, encoder=base, cache=cache)
    trained.head.metrics = {k: asdict(r) for k, r in after.reports.items()}
    trained.head.save(out / tuning.TUNED_HEAD_FILE.name)
    worse = not_worse(after.reports, before.reports)
    seconds = time.monotonic() - began
    meta = tuned.metadata
    lines = [
        f"tuned {meta['layers']} top layers (rank {meta['rank']}, "
        f"{meta.get('voices', '0')} copies in other voices) on {len(training)} messages "
        f"({len(extra)} confirmed by agents): "
        f"{meta['epochs']} epochs, stopped by {meta['stopped_by']}, losses {meta['losses']}, "
        f"{meta['seconds']} s; {'head refitted' if refit else 'then the head'}: "
        f"{seconds:.0f} s in all; wrote {adapters} ({adapters.stat().st_size} bytes) and "
        f"{out / tuning.TUNED_HEAD_FILE.name} ({trained.head.version})",
        f"\nshipped head {shipped.version}:", slice_table(before.reports),
        f"\ntuned {trained.head.version}:", slice_table(after.reports),
        "\nworse than the shipped head: " + ("; ".join(worse) if worse else "nowhere"),
        f"\n{after.text}",
    ]
    return "\n".join(lines), 0
