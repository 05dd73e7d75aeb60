"""The trained head: one softmax layer per task on the frozen embedding, temperature-scaled.

The severity layer also reads the spec's severity signals (bot/classify/signals.py) beside the
embedding. Stored as JSON in the repository (bot/classify/head.json), with its labels, the
encoder it was trained on, and a fingerprint of its training data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.classify import signals
from bot.classify.parts import POOLINGS, TEXT

HEAD_FILE = Path(__file__).with_name("head.json")
TASKS = ("department", "severity", "product")


@dataclass
class TaskHead:
    """Weights, bias and calibration temperature of one task."""

    labels: list[str]
    weight: np.ndarray[Any, np.dtype[np.float32]]  # (labels, dimension)
    bias: np.ndarray[Any, np.dtype[np.float32]]
    temperature: float = 1.0
    signals: float = 0.0  # scale of the severity signals appended to the embedding; 0: none

    def inputs(self, x: np.ndarray[Any, Any], texts: list[str]) -> np.ndarray[Any, Any]:
        """The layer's input: the embeddings, plus the text signals if this layer reads them."""
        if not self.signals:
            return x
        return np.hstack([x, signals.vector(texts, self.signals)])

    def probabilities(self, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Calibrated class probabilities, one row per input row (see `inputs`)."""
        logits = (x @ self.weight.T + self.bias) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: np.ndarray[Any, Any] = exp / exp.sum(axis=1, keepdims=True)
        return result


@dataclass
class Head:
    """All task heads plus where they came from."""

    tasks: dict[str, TaskHead]
    encoder: str
    data_fingerprint: str
    max_tokens: int
    metrics: dict[str, Any] = field(default_factory=dict)
    adapters: str = ""  # digest of the encoder adapters this head reads (tune.py); "": none
    pooling: str = TEXT  # what the layers read (bot/classify/parts.py)

    @property
    def version(self) -> str:
        """The model version recorded on every ticket it classifies."""
        head = "parts-head" if self.pooling != TEXT else "head"
        if self.adapters:
            return f"e5-small-tuned-{self.adapters[:8]}-{head}-{self.data_fingerprint[:8]}"
        return f"e5-small-{head}-{self.data_fingerprint[:8]}"

    def save(self, path: Path = HEAD_FILE) -> None:
        """Write the head as JSON (weights rounded to 6 decimals; about 80 KB)."""
        data = {
            "encoder": self.encoder, "data_fingerprint": self.data_fingerprint,
            "max_tokens": self.max_tokens, "metrics": self.metrics,
            "signal_names": list(signals.NAMES), "pooling": self.pooling,
            **({"adapters": self.adapters} if self.adapters else {}),
            "tasks": {
                name: {"labels": head.labels, "temperature": round(head.temperature, 4),
                       "signals": head.signals,
                       "bias": np.round(head.bias, 6).tolist(),
                       "weight": np.round(head.weight, 6).tolist()}
                for name, head in self.tasks.items()
            },
        }
        path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = HEAD_FILE) -> Head:
        """Read a head written by `save`."""
        data = json.loads(path.read_text(encoding="utf-8"))
        tasks = {
            name: TaskHead(labels=list(task["labels"]),
                           weight=np.asarray(task["weight"], dtype=np.float32),
                           bias=np.asarray(task["bias"], dtype=np.float32),
                           temperature=float(task["temperature"]),
                           signals=float(task.get("signals", 0.0)))
            for name, task in data["tasks"].items()
        }
        uses_signals = any(task.signals for task in tasks.values())
        if uses_signals and data.get("signal_names") != list(signals.NAMES):
            raise ValueError(f"{path} was trained on other severity signals than "
                             "bot/classify/signals.py defines; retrain it")
        pooling = str(data.get("pooling", TEXT))
        if pooling not in POOLINGS:
            raise ValueError(f"{path} reads the pooling {pooling!r}, which this version does "
                             f"not know ({', '.join(POOLINGS)})")
        return cls(tasks=tasks, encoder=data["encoder"], pooling=pooling,
                   data_fingerprint=data["data_fingerprint"],
                   max_tokens=int(data["max_tokens"]), metrics=data.get("metrics", {}),
                   adapters=str(data.get("adapters", "")))
