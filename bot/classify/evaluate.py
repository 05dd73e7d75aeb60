"""Accuracy, macro-F1 and confusion matrices, per task and per language (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    n: int
    accuracy: float
    macro_f1: float
    confusion: dict[str, dict[str, int]]  # truth -> predicted -> count


def score(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> Scores:
    """Scores of one task on one slice of the data."""
    pairs = Counter(zip(truth, predicted, strict=True))
    f1s = []
    for label in labels:
        tp = pairs[(label, label)]
        fp = sum(n for (t, p), n in pairs.items() if p == label and t != label)
        fn = sum(n for (t, p), n in pairs.items() if t == label and p != label)
        if tp + fp + fn == 0:
            continue  # a label absent from this slice does not count
        f1s.append(2 * tp / (2 * tp + fp + fn))
    correct = sum(n for (t, p), n in pairs.items() if t == p)
    confusion = {t: {p: pairs[(t, p)] for p in labels} for t in labels}
    return Scores(n=len(truth), accuracy=correct / max(len(truth), 1),
                  macro_f1=sum(f1s) / max(len(f1s), 1), confusion=confusion)


def table(results: dict[tuple[str, str], Scores]) -> str:
    """The summary table: task, slice, n, accuracy, macro-F1."""
    lines = [f"{'task':<11} {'slice':<6} {'n':>5} {'accuracy':>9} {'macro-F1':>9}"]
    for (task, part), s in results.items():
        lines.append(f"{task:<11} {part:<6} {s.n:>5} {s.accuracy:>9.3f} {s.macro_f1:>9.3f}")
    return "\n".join(lines)


def confusion_text(task: str, s: Scores) -> str:
    """A confusion matrix, rows = truth, columns = prediction."""
    labels = list(s.confusion)
    width = max(len(label) for label in labels) + 1
    head = " " * width + "".join(f"{label[:10]:>11}" for label in labels)
    rows = [f"{task}: rows truth, columns predicted", head]
    for truth in labels:
        rows.append(f"{truth:<{width}}" + "".join(f"{s.confusion[truth][p]:>11}" for p in labels))
    return "\n".join(rows)


def precision_of(truth: Sequence[str], predicted: Sequence[str], label: str) -> float | None:
    """Of the messages predicted `label`, the share truly `label` (None if none predicted)."""
    hits = [t == label for t, p in zip(truth, predicted, strict=True) if p == label]
    return sum(hits) / len(hits) if hits else None


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool],
                               bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width bins."""
    total = len(confidence)
    if total == 0:
        return 0.0
    error = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidence)
                   if (low < c <= high) or (b == 0 and c == 0)]
        if members:
            accuracy = sum(correct[i] for i in members) / len(members)
            mean_conf = sum(confidence[i] for i in members) / len(members)
            error += len(members) / total * abs(accuracy - mean_conf)
    return error


@dataclass(frozen=True)
class Threshold:
    threshold: float
    accuracy_kept: float  # severity accuracy among the messages not flagged
    flagged: float  # share flagged for an agent


def choose_threshold(confidence: Sequence[float], correct: Sequence[bool],
                     target: float = 0.95) -> Threshold:
    """The lowest threshold at which the messages at or above it are right `target` of the time."""
    candidates = sorted({0.0, *(round(c, 3) for c in confidence)})
    for threshold in candidates:
        kept = [ok for c, ok in zip(confidence, correct, strict=True) if c >= threshold]
        if kept and sum(kept) / len(kept) >= target:
            return Threshold(threshold, sum(kept) / len(kept), 1 - len(kept) / len(confidence))
    return Threshold(1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SliceReport:
    """What `classify eval` reports for one evaluation set and language."""

    n: int
    department_f1: float
    severity_f1: float
    precision_a: float | None  # of the final severities (after the needs_triage rules)
    predicted_a: int
    ece: float  # severity, 10 bins, the model's own top probability against its own pick
    flagged: float
    accuracy_unflagged: float | None  # final severity right among the messages not flagged


def slice_table(reports: dict[str, SliceReport]) -> str:
    """One line per evaluation set and language."""
    lines = [f"{'slice':<12} {'n':>4} {'dept-F1':>8} {'sev-F1':>7} {'prec-A':>7} {'#A':>4} "
             f"{'ECE':>6} {'flagged':>8} {'sev-ok-unflagged':>17}"]
    for name, r in reports.items():
        prec = "-" if r.precision_a is None else f"{r.precision_a:.3f}"
        kept = "-" if r.accuracy_unflagged is None else f"{r.accuracy_unflagged:.3f}"
        lines.append(f"{name:<12} {r.n:>4} {r.department_f1:>8.3f} {r.severity_f1:>7.3f} "
                     f"{prec:>7} {r.predicted_a:>4} {r.ece:>6.3f} {r.flagged:>8.2f} {kept:>17}")
    return "\n".join(lines)


def not_worse(new: dict[str, SliceReport], old: dict[str, SliceReport],
              tolerance: float = 0.01) -> list[str]:
    """Where `new` scores worse than `old` (empty: accept): F1 per slice, and precision of A."""
    worse = []
    for name, before in old.items():
        after = new.get(name)
        if after is None:
            worse.append(f"{name}: not evaluated")
            continue
        for what in ("department_f1", "severity_f1"):
            if getattr(after, what) < getattr(before, what) - tolerance:
                worse.append(f"{name}: {what} {getattr(after, what):.3f} < "
                             f"{getattr(before, what):.3f}")
        if (before.precision_a is not None and after.precision_a is not None
                and after.precision_a < before.precision_a - tolerance):
            worse.append(f"{name}: precision_a {after.precision_a:.3f} < {before.precision_a:.3f}")
    return worse


def at_threshold(confidence: Sequence[float], correct: Sequence[bool],
                 threshold: float) -> Threshold:
    """What a given threshold does on a set: the share flagged and the accuracy of the rest."""
    kept = [ok for c, ok in zip(confidence, correct, strict=True) if c >= threshold]
    accuracy = sum(kept) / len(kept) if kept else 1.0
    return Threshold(threshold, accuracy, 1 - len(kept) / max(len(confidence), 1))


def crossed_thresholds(pooled: dict[str, list[tuple[float, bool]]],
                       groups: Sequence[tuple[Sequence[str], Sequence[str]]],
                       target: float = 0.95) -> str:
    """Per language, the threshold picked on one group of slices and what it does on another
    (`pooled`: "<set>/<language>" -> (confidence, severity right) of each message)."""
    languages = sorted({name.split("/")[1] for name in pooled})
    lines = [f"per language, a threshold for {target:.0%} right among unflagged picked on some "
             "sets and reported on the others:",
             f"{'lang':<5} {'picked on':<12} {'threshold':>9} {'flagged':>8} {'right':>6}  "
             f"{'reported on':<12} {'flagged':>8} {'right':>6}"]
    for language in languages:
        for picked, reported in groups:
            mine = [p for s in picked for p in pooled.get(f"{s}/{language}", [])]
            other = [p for s in reported for p in pooled.get(f"{s}/{language}", [])]
            if not mine or not other:
                continue
            chosen = choose_threshold([c for c, _ in mine], [ok for _, ok in mine], target)
            there = at_threshold([c for c, _ in other], [ok for _, ok in other],
                                 chosen.threshold)
            lines.append(f"{language:<5} {'+'.join(picked):<12} {chosen.threshold:>9.3f} "
                         f"{chosen.flagged:>8.0%} {chosen.accuracy_kept:>6.3f}  "
                         f"{'+'.join(reported):<12} {there.flagged:>8.0%} "
                         f"{there.accuracy_kept:>6.3f}")
    return "\n".join(lines)


def every_slice_threshold(slices: dict[str, list[tuple[float, bool]]],
                          names: Iterable[str], target: float = 0.95) -> float:
    """The lowest threshold, in steps of 0.01 (a setting's precision), at which every slice
    ("<set>/<language>") of the sets `names` is right `target` of the time among its messages
    at or above it. Accuracy need not grow with the threshold, so each step is checked."""
    wanted = set(names)
    chosen = [rows for name, rows in slices.items() if name.split("/")[0] in wanted]
    for step in range(101):
        threshold = step / 100
        if all(at_threshold([c for c, _ in rows], [ok for _, ok in rows],
                            threshold).accuracy_kept >= target for rows in chosen):
            return threshold
    return 1.0


def every_slice_text(slices: dict[str, list[tuple[float, bool]]]) -> str:
    """The threshold every slice of eval1 and eval2 supports, and what it does on eval3."""
    picked = every_slice_threshold(slices, ("eval1", "eval2"))
    lines = [f"a threshold for 95 % right among unflagged in every slice of eval1 and eval2: "
             f"{picked:.2f}; on each slice:"]
    for name, rows in slices.items():
        there = at_threshold([c for c, _ in rows], [ok for _, ok in rows], picked)
        lines.append(f"  {name:<9} flagged {there.flagged:>4.0%}  right {there.accuracy_kept:.3f}")
    return "\n".join(lines)
