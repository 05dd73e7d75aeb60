"""Fine-tuning the encoder's top layers (`intake-bot classify tune`): LoRA adapters, on this CPU.

The lower layers stay frozen, so they run once over the training texts and their output (the
input of the first tuned layer) is kept in memory; every epoch then runs only the top layers,
whose linear maps get low-rank adapters (W + B·A·alpha/rank), and the three task layers on the
pooled output. The adapters are small (about 0.4 MB in fp16) and are merged into the prepared
encoder's weights when it loads, so inference costs exactly what it cost before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.classify.corpus import Example, fingerprint
from bot.classify.head import TASKS
from bot.classify.parts import TEXT
from bot.classify.voices import other_voice

log = logging.getLogger(__name__)

ADAPTERS_FILE = Path(__file__).with_name("adapters.safetensors")
TUNED_HEAD_FILE = Path(__file__).with_name("head-tuned.json")
FORMAT = "intake-lora-1"
# the linear maps of a BertLayer that get adapters
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")


class AdaptersStale(ValueError):
    """The adapters file does not fit the prepared encoder (or is missing or unreadable)."""


@dataclass(frozen=True)
class TuneConfig:
    """What `classify tune` trains; every value is recorded in the adapters file."""

    layers: int = 3  # the top transformer layers that get adapters
    rank: int = 8
    alpha: float = 16.0
    epochs: int = 3
    batch: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    budget_seconds: float = 15 * 60  # caching and training; the head's refit comes after
    voices: int = 0  # copies of each training message in another voice (voices.py)
    seed: int = 20261205


@dataclass
class Tuned:
    """The adapters of one run, with what they were trained on."""

    tensors: dict[str, Any]  # "<layer>.<target>.a|b" -> torch tensor
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """A hash of the adapter weights (fp16, as saved): the tuned head records it."""
        h = hashlib.sha256()
        for name in sorted(self.tensors):
            h.update(name.encode())
            h.update(self.tensors[name].half().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]


def base_digest(encoder_dir: Path) -> str:
    """The prepared encoder's identity (the sha256 `model prepare` records), or "" if none."""
    try:
        return str(json.loads((encoder_dir / "intake-source.json").read_text())["sha256"])
    except (OSError, ValueError, KeyError):
        return ""


def save(tuned: Tuned, path: Path = ADAPTERS_FILE) -> None:
    """Write the adapters in fp16 as safetensors, the metadata in its header."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().half().contiguous() for name, t in tuned.tensors.items()}
    save_file(tensors, str(path), metadata={**tuned.metadata, "digest": tuned.digest})


def load(path: Path, encoder_dir: Path) -> Tuned:
    """Read adapters written by `save`; AdaptersStale unless they fit the prepared encoder."""
    from safetensors import safe_open

    if not path.is_file():
        raise AdaptersStale(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {name: handle.get_tensor(name).float() for name in handle.keys()}
    except Exception as exc:  # safetensors raises its own error types for a damaged file
        raise AdaptersStale(f"{path} is not a readable safetensors file: {exc}") from exc
    if metadata.get("format") != FORMAT:
        raise AdaptersStale(f"{path} is not in format {FORMAT}")
    base = base_digest(encoder_dir)
    if metadata.get("base") != base:
        raise AdaptersStale(f"{path} was tuned over encoder {metadata.get('base')!r}, "
                            f"the prepared one in {encoder_dir} is {base or 'unknown'!r}")
    tuned = Tuned(tensors=tensors, metadata=metadata)
    if metadata.get("digest") != tuned.digest:
        raise AdaptersStale(f"{path}: its weights do not match the digest in its header")
    return tuned


def merge(model: Any, tuned: Tuned) -> None:
    """Add B·A·alpha/rank to each adapted weight of `model` (a BertModel), in place."""
    import torch

    scale = float(tuned.metadata["alpha"]) / float(tuned.metadata["rank"])
    layers = model.encoder.layer
    with torch.no_grad():
        for name in {n.rsplit(".", 1)[0] for n in tuned.tensors}:
            index, target = name.split(".", 1)
            linear = layers[int(index)].get_submodule(target)
            delta = tuned.tensors[f"{name}.b"] @ tuned.tensors[f"{name}.a"]
            linear.weight += scale * delta.to(linear.weight.dtype)


def _lora_layer(base: Any, rank: int, alpha: float, generator: Any) -> Any:
    import torch

    class LoraLinear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.base = base
            # A random, B zero: training starts exactly at the prepared encoder
            self.a = torch.nn.Parameter(torch.randn(rank, base.in_features, generator=generator)
                                        / math.sqrt(base.in_features))
            self.b = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.a.T @ self.b.T) * self.scale  # type: ignore[no-any-return]

    return LoraLinear()


def _set_submodule(root: Any, dotted: str, module: Any) -> None:
    parent, _, child = dotted.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


@dataclass
class _Cache:
    """The frozen lower layers' output for every training text, trimmed to its tokens."""

    states: list[Any]  # (tokens, hidden) fp16 tensors
    signals: np.ndarray[Any, Any]


def _lower_states(encoder: Any, texts: list[str], start: int, deadline: float) -> list[Any]:
    """The input of layer `start` for each text (one frozen forward pass, batched by length)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[Any] = [None] * len(texts)
    for begin in range(0, len(order), 32):
        if time.monotonic() > deadline:
            raise TimeoutError("the time budget ran out while caching the frozen layers")
        chunk = order[begin:begin + 32]
        queries = [f"query: {texts[i]}" for i in chunk]
        batch = encoder.pieces.batch(queries, encoder.max_tokens)
        with torch.inference_mode():
            hidden = encoder.model(**batch, output_hidden_states=True).hidden_states[start]
        for row, i in enumerate(chunk):
            length = int(batch["attention_mask"][row].sum())
            out[i] = hidden[row, :length].to(torch.float16).clone()
    return out


def tune(encoder: Any, examples: list[Example], head: Any, config: TuneConfig, *,
         encoder_dir: Path, now: float | None = None) -> Tuned:
    """Train LoRA adapters on the top `config.layers` layers of `encoder` (an Encoder), with the
    task layers initialised from `head` (the shipped head), on `examples` (training split)."""
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    if any(e.split != "T" for e in examples):
        raise ValueError("evaluation examples must never be used for training")
    began = time.monotonic() if now is None else now
    deadline = began + config.budget_seconds
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = encoder.model
    total = len(model.encoder.layer)
    start = total - config.layers
    trained_on = fingerprint(examples)
    texts = [e.text for e in examples]
    copies = random.Random(config.seed)
    for _ in range(config.voices):
        texts += [other_voice(e.subject, e.body, e.language, copies) for e in examples]
    examples = examples * (1 + config.voices)  # a copy keeps its message's labels
    states = _lower_states(encoder, texts, start, deadline)
    cached = time.monotonic() - began
    log.info("event=tune_cached texts=%d seconds=%.0f", len(texts), cached)

    top = torch.nn.ModuleList(model.encoder.layer[start:])
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    adapters: dict[str, Any] = {}
    for offset, layer in enumerate(top):
        for target in TARGETS:
            wrapped = _lora_layer(layer.get_submodule(target), config.rank, config.alpha,
                                  generator)
            _set_submodule(layer, target, wrapped)
            adapters[f"{start + offset}.{target}"] = wrapped

    # the task layers start as the shipped head (unscaled: they read unit vectors)
    layers = {}
    inputs_signals = {}
    targets = {}
    weights = {}
    for task in TASKS:
        th = head.tasks[task]
        weight = th.weight
        if head.pooling != TEXT:  # this forward pools the whole text: start from its columns
            dimension = int(model.config.hidden_size)  # and the signals', not the sentences'
            weight = np.ascontiguousarray(np.hstack([weight[:, :dimension],
                                                     weight[:, 3 * dimension:]]))
        linear = torch.nn.Linear(weight.shape[1], len(th.labels))
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weight))
            linear.bias.copy_(torch.from_numpy(th.bias))
        layers[task] = linear
        inputs_signals[task] = torch.from_numpy(
            th.inputs(np.zeros((len(texts), 0), np.float32), texts).astype(np.float32))
        y = torch.tensor([th.labels.index(str(getattr(e, task))) for e in examples])
        targets[task] = y
        counts = torch.bincount(y, minlength=len(th.labels)).float().clamp(min=1)
        weights[task] = counts.sum() / (len(th.labels) * counts)
    task_weight = {"department": 1.0, "severity": 2.0, "product": 0.5}

    lora_params = [p for m in adapters.values() for p in (m.a, m.b)]
    head_params = [p for m in layers.values() for p in m.parameters()]
    optimiser = torch.optim.AdamW([
        {"params": lora_params, "lr": config.lr},
        {"params": head_params, "lr": config.lr / 5},
    ], weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(texts) / config.batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / steps_per_epoch) * max(
            0.1, 1 - step / (steps_per_epoch * config.epochs)))

    def forward(rows: list[int]) -> dict[str, Any]:
        width = max(states[i].shape[0] for i in rows)
        hidden = torch.zeros(len(rows), width, states[rows[0]].shape[1])
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for r, i in enumerate(rows):
            hidden[r, :states[i].shape[0]] = states[i].float()
            mask[r, :states[i].shape[0]] = 1
        attention = create_bidirectional_mask(config=model.config, inputs_embeds=hidden,
                                              attention_mask=mask)
        for layer in top:
            hidden = layer(hidden, attention)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)
        logits = {}
        for task, linear in layers.items():
            x = torch.cat([pooled, inputs_signals[task][rows]], dim=1)
            logits[task] = linear(x)
        return logits

    # batches of similar length (less padding), shuffled with the seed
    by_length = sorted(range(len(texts)), key=lambda i: states[i].shape[0])
    batches = [by_length[i:i + config.batch] for i in range(0, len(by_length), config.batch)]
    rng = np.random.default_rng(config.seed)
    losses: list[float] = []
    epochs_done = 0
    stopped = "epochs"
    top.train()
    for epoch in range(config.epochs):
        total_loss = 0.0
        for number in rng.permutation(len(batches)):
            if time.monotonic() > deadline:
                stopped = "budget"
                break
            rows = batches[int(number)]
            logits = forward(rows)
            loss = sum(task_weight[task] * torch.nn.functional.cross_entropy(
                logits[task], targets[task][rows], weight=weights[task]) for task in TASKS)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[union-attr]
            optimiser.step()
            schedule.step()
            total_loss += float(loss.item()) * len(rows)  # type: ignore[union-attr]
        if stopped == "budget":
            break
        epochs_done = epoch + 1
        losses.append(total_loss / len(texts))
        log.info("event=tune_epoch epoch=%d loss=%.4f seconds=%.0f", epoch + 1, losses[-1],
                 time.monotonic() - began)
    top.eval()

    tensors = {}
    for name, module in adapters.items():
        tensors[f"{name}.a"] = module.a.detach().clone()
        tensors[f"{name}.b"] = module.b.detach().clone()
        _set_submodule(model.encoder.layer[int(name.split(".")[0])],
                       name.split(".", 1)[1], module.base)  # the encoder as it was
    metadata = {
        "format": FORMAT, "base": base_digest(encoder_dir), "layers": str(config.layers),
        "first_layer": str(start), "rank": str(config.rank), "alpha": str(config.alpha),
        "epochs": str(epochs_done), "stopped_by": stopped, "lr": str(config.lr),
        "batch": str(config.batch), "seed": str(config.seed), "max_tokens": str(encoder.max_tokens),
        "data_fingerprint": trained_on,
        "texts": str(len(texts)), "voices": str(config.voices),
        "losses": json.dumps([round(v, 4) for v in losses]),
        "seconds": f"{time.monotonic() - began:.0f}", "cache_seconds": f"{cached:.0f}",
    }
    return Tuned(tensors=tensors, metadata=metadata)
