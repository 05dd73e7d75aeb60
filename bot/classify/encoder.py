"""The frozen text encoder: multilingual-e5-small through transformers, on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bot.classify.pieces import Pieces, ensure_spm

DEFAULT_ENCODER = "var/models/multilingual-e5-small"
HUB_ID = "intfloat/multilingual-e5-small"


def is_local(source: str) -> bool:
    """A directory path rather than a hub id ("org/name")."""
    return source.startswith(("/", ".", "~")) or source.count("/") != 1 or Path(source).exists()


class EncoderMissing(RuntimeError):
    """The configured encoder directory does not exist (yet)."""


def check_source(source: str) -> None:
    """Raise EncoderMissing when `source` names a local directory that does not exist."""
    if is_local(source) and not Path(source).is_dir():
        raise EncoderMissing(
            f"no encoder at {source}: run `intake-bot model prepare` (or set ENCODER to a "
            f"Hugging Face id such as {HUB_ID} on a machine with internet)"
        )


class Encoder:
    """E5 sentence embeddings: "query: " prefix, mean pooling over the mask, L2-normalised."""

    def __init__(self, source: str, *, max_tokens: int = 256, threads: int = 2,
                 quantize: bool = False, adapters: Path | None = None) -> None:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        check_source(source)
        torch.set_num_threads(threads)
        self.threads = threads
        self.source = source
        self.max_tokens = max_tokens
        self.quantized = quantize
        self.pieces: Pieces | None = None
        self.tokenizer: Any = None
        local = Path(source)
        if is_local(source) and (local / "tokenizer.json").exists():
            self.pieces = Pieces(ensure_spm(local))  # the same ids, a fifth of the memory
        else:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source, add_pooling_layer=False).eval()
        self.adapters = ""  # the digest of the merged adapters, "" for the prepared encoder
        if adapters is not None:
            from bot.classify import tune

            tuned = tune.load(adapters, local)  # AdaptersStale if they do not fit
            tune.merge(model, tuned)
            self.adapters = tuned.digest
            # another name for another model: the embedding cache keys on it
            self.source = f"{source}+tuned-{tuned.digest[:8]}"
        if quantize:
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self.model: Any = model
        self.dimension = int(model.config.hidden_size)

    def pin_threads(self) -> None:
        """Use `threads` torch threads for inference started from the calling OS thread."""
        import torch

        torch.set_num_threads(self.threads)

    def embed(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One normalised row per text."""
        import torch

        queries = [f"query: {text}" for text in texts]
        batch = (self.pieces.batch(queries, self.max_tokens) if self.pieces is not None
                 else self.tokenizer(queries, padding=True, truncation=True,
                                     max_length=self.max_tokens, return_tensors="pt"))
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
        result: np.ndarray[Any, np.dtype[np.float32]] = pooled.numpy().astype(np.float32)
        return result
