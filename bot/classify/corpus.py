"""The hand-written triage corpus in data/: loading, and its fixed evaluation split."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.domain import Department, Language, Severity

DATA = Path(__file__).resolve().parents[2] / "data"
# The second evaluation set: other voices, written before the model saw the new training text.
# Its files sit one level deeper (eval2/<language>/<department>.txt), so `load()` never reads it.
EVAL2 = DATA / "eval2"
# The third (issue 25), written by someone who saw neither the training text nor eval2; laid out
# like eval2 (eval3/<language>/<department>.txt) and, like it, never trained on.
EVAL3 = DATA / "eval3"
PRODUCTS = {"dh": "dehosted", "m365": "m365"}
LINE = re.compile(r"^([TE]) ([ABC]) (\S+) \|(.*?)\| (.*)$")


class CorpusError(ValueError):
    """A corpus line that does not follow data/README.md."""


@dataclass(frozen=True)
class Example:
    """One labelled message."""

    id: str  # "<language>/<department>:<line>"
    language: Language
    department: Department
    severity: Severity
    product: str
    subject: str
    body: str
    split: str  # "T" (training) or "E" (evaluation)

    @property
    def text(self) -> str:
        """Subject and body, as the classifier sees a message."""
        return f"{self.subject}\n{self.body}".strip()


def parse_line(path: Path, number: int, line: str) -> Example:
    """One `<split> <severity> <product> | <subject> | <body>` line."""
    match = LINE.match(line.rstrip("\n"))
    if match is None:
        raise CorpusError(f"{path}:{number}: expected '<split> <sev> <product> | subject | body'")
    split, severity, product, subject, body = match.groups()
    if product not in PRODUCTS:
        raise CorpusError(f"{path}:{number}: bad split {split!r} or product {product!r}")
    return Example(
        id=f"{path.parent.name}/{path.stem}:{number}",
        language=Language(path.parent.name),
        department=Department(path.stem),
        severity=Severity(severity),
        product=PRODUCTS[product],
        subject=subject.strip(),
        body=body.replace("\\n", "\n").strip(),
        split=split,
    )


def load(root: Path = DATA) -> list[Example]:
    """Every example of the corpus, in file order."""
    examples = []
    for path in sorted(root.glob("*/*.txt")):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    examples.append(parse_line(path, number, line))
    return examples


def _load_evaluation_only(root: Path, name: str) -> list[Example]:
    """An evaluation-only set under `root`; every line must be marked E (never training)."""
    examples = [replace(e, id=f"{name}/{e.id}") for e in load(root)]
    wrong = [e.id for e in examples if e.split != "E"]
    if wrong:
        raise CorpusError(f"{root}: evaluation-only files hold training lines: {wrong[:3]}")
    return examples


def load_eval2(root: Path = EVAL2) -> list[Example]:
    """The second evaluation set; every line must be marked E (never training)."""
    return _load_evaluation_only(root, "eval2")


def load_eval3(root: Path = EVAL3) -> list[Example]:
    """The third evaluation set, written blind to the others; every line must be marked E."""
    return _load_evaluation_only(root, "eval3")


def evaluation_sets() -> dict[str, list[Example]]:
    """The fixed evaluation sets: the corpus's E split, the second set in other voices, and the
    third written by someone who saw neither."""
    return {"eval1": [e for e in load() if e.split == "E"], "eval2": load_eval2(),
            "eval3": load_eval3()}


def fingerprint(examples: Iterable[Example]) -> str:
    """A hash of the training data, stored with the head that was trained on it."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(f"{example.id}|{example.department}|{example.severity}|"
                      f"{example.product}|{example.text}\n".encode())
    return digest.hexdigest()[:16]


def translation_groups(examples: list[Example], embeddings: Any,
                       threshold: float = 0.89) -> dict[str, str]:
    """Pair each English message with its closest German one of the same department when
    their embeddings are this similar (a translation), so both land on the same side."""
    german = [i for i, e in enumerate(examples) if e.language == Language.DE]
    groups: dict[str, str] = {}
    for i, example in enumerate(examples):
        if example.language != Language.EN or not german:
            continue
        similarity = embeddings[german] @ embeddings[i]
        best = german[int(similarity.argmax())]
        if similarity.max() >= threshold and examples[best].department == example.department:
            groups[example.id] = examples[best].id
    return groups


def stratified_split(examples: list[Example], groups: dict[str, str],
                     every: int = 5) -> dict[str, str]:
    """Every `every`-th group of each (language, department, severity) stratum is evaluation.

    `groups` maps an example id to its group (a German message and its English translation
    share one), so that translations never sit on both sides of the split.
    """
    strata: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    seen: set[str] = set()
    by_id = {e.id: e for e in examples}
    for example in examples:
        group = groups.get(example.id, example.id)
        if group in seen:
            continue
        seen.add(group)
        leader = by_id.get(group, example)
        strata[(leader.language, leader.department, leader.severity)].append(group)
    chosen: dict[str, str] = {}
    for members in strata.values():
        for index, group in enumerate(members):
            chosen[group] = "E" if index % every == every - 1 else "T"
    return {e.id: chosen[groups.get(e.id, e.id)] for e in examples}


def write_splits(splits: dict[str, str], root: Path = DATA) -> int:
    """Rewrite the split marker of every line; returns how many changed."""
    changed = 0
    for path in sorted(root.glob("*/*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for index, line in enumerate(lines):
            key = f"{path.parent.name}/{path.stem}:{index + 1}"
            if key in splits and line[:1] != splits[key]:
                lines[index] = splits[key] + line[1:]
                changed += 1
        path.write_text("".join(lines), encoding="utf-8")
    return changed
