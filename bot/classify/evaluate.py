"""Accuracy, macro-F1 and confusion matrices, per task and per language (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
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
