"""The tuned encoder over the real prepared model: adapters merged at start, the head over them
recorded on every ticket, and the plain model (with a log line) when the files do not fit."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.classify import tune
from bot.classify.commands import choose_model, load_classifier
from bot.classify.head import Head
from bot.config import Settings
from tests.integration.test_classify_model import ENCODER, model_settings

pytestmark = pytest.mark.slow  # loads the model

TEXT = "Seit 6 Uhr ist unser Shop nicht erreichbar, alle Bestellungen bleiben liegen."


def write_tuned(directory: Path, *, data_fingerprint: str | None = None) -> Settings:
    """Small random adapters on the real encoder's last layer, and the shipped head over them."""
    generator = torch.Generator().manual_seed(5)
    tensors = {"11.attention.self.query.a": torch.randn(2, 384, generator=generator) / 4,
               "11.attention.self.query.b": torch.randn(384, 2, generator=generator) / 4}
    shipped = Head.load()
    tuned = tune.Tuned(tensors=tensors, metadata={
        "format": tune.FORMAT, "base": tune.base_digest(ENCODER), "rank": "2", "alpha": "4",
        "data_fingerprint": data_fingerprint or shipped.data_fingerprint})
    tune.save(tuned, directory / "adapters.safetensors")
    shipped.adapters = tune.load(directory / "adapters.safetensors", ENCODER).digest
    shipped.save(directory / "head-tuned.json")
    return model_settings().model_copy(update={
        "classifier_tuned": True,
        "classifier_adapters_file": directory / "adapters.safetensors",
        "classifier_tuned_head_file": directory / "head-tuned.json"})


def test_sound_files_serve_the_tuned_encoder_and_head(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.classify.commands")
    settings = write_tuned(tmp_path)
    encoder, head = choose_model(settings)
    plain, _ = choose_model(settings.model_copy(update={"classifier_tuned": False}))
    assert head.version.startswith("e5-small-tuned-")
    assert encoder.adapters == head.adapters
    assert encoder.source.endswith(f"+tuned-{head.adapters[:8]}")  # its own cache keys
    gap = float(np.abs(encoder.embed([TEXT]) - plain.embed([TEXT])).max())
    assert gap > 1e-3
    assert [r.getMessage() for r in caplog.records if "tuned_model" in r.getMessage()] == [
        f"event=tuned_model_used model={head.version}"]


def test_the_classifier_records_the_tuned_version_on_its_triage(tmp_path: Path) -> None:
    classifier = load_classifier(write_tuned(tmp_path))
    try:
        triage = classifier.classify("Shop offline", TEXT)
    finally:
        classifier.close()
    assert triage.model == classifier.head.version
    assert triage.model.startswith("e5-small-tuned-")


@pytest.mark.parametrize("damage", ["missing", "other data", "other encoder"])
def test_unfit_files_fall_back_to_the_plain_model_with_a_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    settings = write_tuned(tmp_path, data_fingerprint="1" * 16 if damage == "other data"
                           else None)
    if damage == "missing":
        (tmp_path / "adapters.safetensors").unlink()
    if damage == "other encoder":
        source = tmp_path / "encoder"
        source.symlink_to(ENCODER)  # the same weights, but not the directory the files name
        other = tmp_path / "other"
        other.mkdir()
        for item in ENCODER.iterdir():
            if item.name != "intake-source.json":
                (other / item.name).symlink_to(item)
        (other / "intake-source.json").write_text('{"sha256": "0000000000000000"}')
        settings = settings.model_copy(update={"encoder": str(other)})
    caplog.set_level(logging.INFO, logger="bot.classify.commands")
    encoder, head = choose_model(settings)
    assert head.version == Head.load().version
    assert encoder.adapters == ""
    reasons = {"missing": "does not exist", "other data": "tuned on training data 1111",
               "other encoder": "was tuned over encoder"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("event=tuned_model_ignored")
    assert reasons[damage] in warnings[0]


def test_a_head_retrained_with_agents_labels_comes_before_the_tuned_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # it was accepted against the plain shipped head, over the plain encoder
    retrained = Head.load()
    retrained.data_fingerprint = "f" * 16
    retrained.metrics = {"accepted_over": Head.load().version}
    retrained.save(tmp_path / "retrained.json")
    settings = write_tuned(tmp_path).model_copy(
        update={"classifier_head_file": tmp_path / "retrained.json"})
    caplog.set_level(logging.INFO, logger="bot.classify.commands")
    encoder, head = choose_model(settings)
    assert head.version == "e5-small-parts-head-ffffffff"
    assert encoder.adapters == ""
    assert "event=tuned_model_ignored reason=retrained_head_e5-small-parts-head-ffffffff" in [
        r.getMessage() for r in caplog.records]
