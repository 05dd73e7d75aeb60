"""The encoder's sentencepiece tokenizer gives the ids of transformers' tokenizer, which the
classifier's head was trained with (built from the tokenizer.json the model ships)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from bot.classify.corpus import load, load_eval2, load_eval3
from bot.classify.pieces import Pieces, ensure_spm
from bot.classify.prepare import TOKENIZER_CONFIG, package_files

pytestmark = pytest.mark.slow  # loads the encoder's tokenizer with transformers

MAIL = Path(__file__).resolve().parents[1] / "mail"
EDGES = ["", " ", "  Hallo   Welt\t\n  zwei  ", "Ende mit Leerzeichen ", "Zeile\n",
         "a\u00a0 b", "Ünïcödé ｆｕｌｌｗｉｄｔｈ ① ﬁ", "emoji 😀 中文 العربية",
         "<script>alert(1)</script> <!channel> & Co.", "x" * 3000]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("encoder")
    shutil.copyfile(package_files()[1], directory / "tokenizer.json")
    return directory


@pytest.fixture(scope="module")
def pieces(model_dir: Path) -> Pieces:
    return Pieces(ensure_spm(model_dir))


@pytest.fixture(scope="module")
def reference(model_dir: Path) -> Any:
    (model_dir / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG))
    return AutoTokenizer.from_pretrained(str(model_dir))


def texts() -> list[str]:
    """What the classifier sees: every corpus message, every test mail, some edge cases."""
    corpus = [e.text for e in [*load(), *load_eval2(), *load_eval3()]]
    mails = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(MAIL.glob("*.eml"))]
    return [f"query: {text}" for text in [*corpus, *mails, *EDGES]]


def test_the_ids_are_transformers_on_every_message(pieces: Pieces, reference: Any) -> None:
    differ = [t[:60] for t in texts()
              if pieces.ids(t, 256) != reference(t, truncation=True, max_length=256)["input_ids"]]
    assert differ == []


def test_a_long_text_is_cut_to_the_token_budget_with_its_end_marker(pieces: Pieces) -> None:
    ids = pieces.ids("query: " + "Wort " * 400, 256)
    assert (len(ids), ids[0], ids[-1]) == (256, 0, 2)


def test_a_padded_batch_equals_transformers(pieces: Pieces, reference: Any) -> None:
    batch = texts()[:5] + texts()[-10:]
    expected = reference(batch, padding=True, truncation=True, max_length=256,
                         return_tensors="pt")
    got = pieces.batch(batch, 256)
    assert got["input_ids"].tolist() == expected["input_ids"].tolist()
    assert got["attention_mask"].tolist() == expected["attention_mask"].tolist()


def test_the_model_file_is_written_once(model_dir: Path) -> None:
    first = ensure_spm(model_dir)
    stamp = first.stat().st_mtime_ns
    assert ensure_spm(model_dir).stat().st_mtime_ns == stamp
