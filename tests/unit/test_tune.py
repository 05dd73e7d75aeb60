"""Fine-tuning the encoder's top layers (bot/classify/tune.py) on a tiny random BERT: the
adapters' arithmetic, their file and its staleness checks, and what a run may train on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bot.classify import signals, tune
from bot.classify.commands import tuned_head
from bot.classify.corpus import Example, load_eval2, load_eval3
from bot.classify.head import Head, TaskHead
from bot.classify.parts import TEXT
from bot.config import Settings
from bot.domain import Department, Language, Severity

HIDDEN = 32


class Letters:
    """A stand-in tokenizer for the tiny model: one id per character (pieces.Pieces' batch)."""

    def batch(self, texts: list[str], max_tokens: int) -> dict[str, Any]:
        rows = [[0, *(3 + ord(c) % 40 for c in text[:max_tokens - 2]), 2] for text in texts]
        width = max(len(row) for row in rows)
        ids = torch.ones((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for number, row in enumerate(rows):
            ids[number, :len(row)] = torch.tensor(row)
            mask[number, :len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class TinyEncoder:
    """What tune() reads of an Encoder: a BertModel, its tokenizer, the token budget."""

    def __init__(self) -> None:
        from transformers import BertConfig, BertModel

        torch.manual_seed(1)
        config = BertConfig(vocab_size=50, hidden_size=HIDDEN, num_hidden_layers=3,
                            num_attention_heads=2, intermediate_size=64,
                            max_position_embeddings=64, pad_token_id=1)
        self.model = BertModel(config, add_pooling_layer=False).eval()
        self.pieces = Letters()
        self.max_tokens = 40

    def pooled(self, texts: list[str]) -> torch.Tensor:
        batch = self.pieces.batch(texts, self.max_tokens)
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)


def tiny_head() -> Head:
    rng = np.random.default_rng(3)

    def layer(labels: list[str], extra: int, scale: float) -> TaskHead:
        return TaskHead(labels=labels, bias=np.zeros(len(labels), np.float32),
                        weight=rng.normal(size=(len(labels), HIDDEN + extra)).astype(np.float32),
                        signals=scale)

    return Head(tasks={"department": layer(sorted(d.value for d in Department), 0, 0.0),
                       "severity": layer(["A", "B", "C"], len(signals.NAMES), 0.3),
                       "product": layer(["dehosted", "m365"], 0, 0.0)},
                encoder="tiny", data_fingerprint="0" * 16, max_tokens=40)


def examples(n: int = 24, split: str = "T") -> list[Example]:
    departments, severities = list(Department), list(Severity)
    return [Example(id=f"en/x:{i}", language=Language.EN, department=departments[i % 4],
                    severity=severities[i % 3], product=("dehosted", "m365")[i % 2],
                    subject=f"subject {i}", body="mail down " * (i % 5) + f"message {i}",
                    split=split) for i in range(n)]


def encoder_dir(tmp_path: Path, sha: str = "abc123") -> Path:
    directory = tmp_path / "encoder"
    directory.mkdir(exist_ok=True)
    (directory / "intake-source.json").write_text(json.dumps({"sha256": sha}))
    return directory


CONFIG = tune.TuneConfig(layers=2, rank=4, epochs=2, batch=8, lr=1e-2, budget_seconds=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[tune.Tuned, TinyEncoder, Path]:
    directory = encoder_dir(tmp_path_factory.mktemp("tiny"))
    encoder = TinyEncoder()
    return tune.tune(encoder, examples(), tiny_head(), CONFIG, encoder_dir=directory), \
        encoder, directory


def test_a_run_trains_adapters_on_the_top_layers_only(trained: Any) -> None:
    tuned, _, _ = trained
    layers = {name.split(".")[0] for name in tuned.tensors}
    assert layers == {"1", "2"}
    assert len(tuned.tensors) == 2 * 2 * len(tune.TARGETS)
    assert max(float(t.abs().max()) for n, t in tuned.tensors.items() if n.endswith(".b")) > 0
    assert tuned.metadata["epochs"] == "2"
    assert tuned.metadata["stopped_by"] == "epochs"
    assert tuned.metadata["base"] == "abc123"


def test_a_run_leaves_the_encoder_as_it_was(trained: Any) -> None:
    _, encoder, _ = trained
    fresh = TinyEncoder()
    texts = ["mail down since six", "invoice copy please"]
    assert torch.equal(encoder.pooled(texts), fresh.pooled(texts))


def test_the_same_seed_gives_the_same_adapters(trained: Any) -> None:
    tuned, _, directory = trained
    again = tune.tune(TinyEncoder(), examples(), tiny_head(), CONFIG, encoder_dir=directory)
    assert again.digest == tuned.digest


def test_merged_adapters_add_their_low_rank_product(trained: Any, tmp_path: Path) -> None:
    tuned, _, directory = trained
    path = tmp_path / "adapters.safetensors"
    tune.save(tuned, path)
    loaded = tune.load(path, directory)
    encoder = TinyEncoder()
    target = encoder.model.encoder.layer[2].attention.self.query
    before = target.weight.detach().clone()
    tune.merge(encoder.model, loaded)
    a, b = loaded.tensors["2.attention.self.query.a"], loaded.tensors["2.attention.self.query.b"]
    expected = before + CONFIG.alpha / CONFIG.rank * (b @ a)
    assert torch.allclose(target.weight, expected, atol=1e-6)
    untouched = encoder.model.encoder.layer[0].attention.self.query.weight
    assert torch.equal(untouched, TinyEncoder().model.encoder.layer[0].attention.self.query.weight)


def test_the_file_is_fp16_and_keeps_its_digest(trained: Any, tmp_path: Path) -> None:
    tuned, _, directory = trained
    path = tmp_path / "adapters.safetensors"
    tune.save(tuned, path)
    loaded = tune.load(path, directory)
    assert loaded.digest == tuned.digest
    assert loaded.metadata["digest"] == tuned.digest
    assert loaded.metadata["data_fingerprint"] == tuned.metadata["data_fingerprint"]
    parameters = sum(t.numel() for t in tuned.tensors.values())
    assert path.stat().st_size < 2 * parameters + 10_000  # two bytes a weight, plus the header


def test_adapters_for_another_encoder_are_stale(trained: Any, tmp_path: Path) -> None:
    tuned, _, _ = trained
    path = tmp_path / "adapters.safetensors"
    tune.save(tuned, path)
    other = encoder_dir(tmp_path, sha="fff000")
    with pytest.raises(tune.AdaptersStale, match="tuned over encoder 'abc123'.*'fff000'"):
        tune.load(path, other)


def test_a_missing_or_damaged_file_is_stale(trained: Any, tmp_path: Path) -> None:
    tuned, _, directory = trained
    path = tmp_path / "adapters.safetensors"
    with pytest.raises(tune.AdaptersStale, match="does not exist"):
        tune.load(path, directory)
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(tune.AdaptersStale, match="not a readable safetensors file"):
        tune.load(path, directory)


def test_edited_weights_do_not_match_the_digest(trained: Any, tmp_path: Path) -> None:
    tuned, _, directory = trained
    path = tmp_path / "adapters.safetensors"
    edited = tune.Tuned(tensors=dict(tuned.tensors), metadata=dict(tuned.metadata))
    tune.save(edited, path)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    tensors["2.output.dense.b"] = tensors["2.output.dense.b"] + 1
    save_file(tensors, str(path), metadata={**tuned.metadata, "digest": tuned.digest})
    with pytest.raises(tune.AdaptersStale, match="do not match the digest"):
        tune.load(path, directory)


@pytest.mark.parametrize("loader", [load_eval2, load_eval3])
def test_a_run_refuses_evaluation_examples(loader: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="never be used for training"):
        tune.tune(TinyEncoder(), [*examples(4), *loader()[:2]], tiny_head(), CONFIG,
                  encoder_dir=encoder_dir(tmp_path))


def test_a_run_that_exceeds_its_budget_stops(tmp_path: Path) -> None:
    late = time.monotonic() - CONFIG.budget_seconds - 1  # the run "began" before its budget
    with pytest.raises(TimeoutError, match="time budget"):
        tune.tune(TinyEncoder(), examples(), tiny_head(), CONFIG,
                  encoder_dir=encoder_dir(tmp_path), now=late)


def tuned_files(trained: Any, tmp_path: Path, *, fingerprint: str) -> Settings:
    """Adapters and a head over them in tmp_path, as `classify tune` writes them."""
    tuned, _, directory = trained
    tuned = tune.Tuned(tensors=tuned.tensors,
                       metadata={**tuned.metadata, "data_fingerprint": fingerprint})
    tune.save(tuned, tmp_path / "adapters.safetensors")
    head = Head.load()
    head.adapters = tuned.digest
    head.pooling = TEXT  # the adapters were tuned on the whole text's pooling
    head.save(tmp_path / "head-tuned.json")
    return Settings(_env_file=None, encoder=str(directory),
                    classifier_adapters_file=tmp_path / "adapters.safetensors",
                    classifier_tuned_head_file=tmp_path / "head-tuned.json")


def test_the_tuned_head_is_taken_when_its_files_fit(trained: Any, tmp_path: Path) -> None:
    shipped = Head.load()
    settings = tuned_files(trained, tmp_path, fingerprint=shipped.data_fingerprint)
    head = tuned_head(settings, shipped)
    assert head.version == f"e5-small-tuned-{trained[0].digest[:8]}-head-" \
                           f"{shipped.data_fingerprint[:8]}"


def test_adapters_tuned_on_other_training_data_are_stale(trained: Any, tmp_path: Path) -> None:
    shipped = Head.load()
    settings = tuned_files(trained, tmp_path, fingerprint="1" * 16)
    with pytest.raises(tune.AdaptersStale, match="tuned on training data 1111111111111111"):
        tuned_head(settings, shipped)


def test_a_head_fitted_over_other_adapters_is_stale(trained: Any, tmp_path: Path) -> None:
    shipped = Head.load()
    settings = tuned_files(trained, tmp_path, fingerprint=shipped.data_fingerprint)
    head = Head.load(settings.classifier_tuned_head_file)
    head.adapters = "2" * 16
    head.save(settings.classifier_tuned_head_file)
    with pytest.raises(tune.AdaptersStale, match="fitted over other adapters"):
        tuned_head(settings, shipped)


def test_copies_in_other_voices_add_texts_not_training_data(tmp_path: Path) -> None:
    from bot.classify.corpus import fingerprint

    config = tune.TuneConfig(layers=1, rank=2, epochs=1, batch=8, voices=1)
    tuned = tune.tune(TinyEncoder(), examples(), tiny_head(), config,
                      encoder_dir=encoder_dir(tmp_path))
    assert tuned.metadata["texts"] == str(2 * len(examples()))
    assert tuned.metadata["data_fingerprint"] == fingerprint(examples())
