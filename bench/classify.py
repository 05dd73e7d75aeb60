"""Benchmark the classifier: messages per second (one at a time, batched, and through the
micro-batcher under concurrency) and latency p50/p99, plus the evaluation-split macro-F1 of
each configuration, so that a speed-up is never bought with accuracy unknowingly.

Run: `.venv/bin/python bench/classify.py [--configs fp32-256,int8-256,fp32-128,fp32-256-tuned]`
(`-tuned`: with the adapters of `classify tune` merged in, from --tuned-dir, default bot/classify).
Not part of the tests.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.classify import tune
from bot.classify.corpus import load
from bot.classify.encoder import Encoder
from bot.classify.evaluate import score
from bot.classify.head import Head
from bot.classify.model import ModelClassifier

ENCODER = "var/models/multilingual-e5-small"
TUNED = tune.ADAPTERS_FILE.parent  # where -tuned configs find the files (--tuned-dir)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(config: str, texts: list[str], truth: dict[str, list[str]], threads: int,
        tuned_dir: Path = TUNED) -> list[str]:
    precision, tokens, *tuned = config.split("-")
    # "-tuned": the adapters merged into the encoder and the head fitted over them (tune.py)
    adapters = tuned_dir / tune.ADAPTERS_FILE.name if tuned == ["tuned"] else None
    head = Head.load(tuned_dir / tune.TUNED_HEAD_FILE.name) if adapters else Head.load()
    encoder = Encoder(ENCODER, max_tokens=int(tokens), threads=threads,
                      quantize=precision == "int8", adapters=adapters)
    model = ModelClassifier(encoder, head)
    model.classify_many(texts[:8])  # warm up

    single = []
    for text in texts[:60]:
        began = time.perf_counter()
        model.classify_many([text])
        single.append(time.perf_counter() - began)

    began = time.perf_counter()
    predicted = model.classify_many(texts)
    batched = (time.perf_counter() - began) / len(texts)

    latencies: list[float] = []
    lock = threading.Lock()

    def one(text: str) -> None:
        start = time.perf_counter()
        model.classify("", text)
        with lock:
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, texts))
    concurrent = len(texts) / (time.perf_counter() - began)
    model.close()

    f1 = {task: score(truth[task], [str(getattr(p, task)) for p in predicted],
                      head.tasks[task].labels).macro_f1
          for task in ("department", "severity")}
    return [config, f"{1 / statistics.mean(single):.1f}", f"{1000 * statistics.median(single):.1f}",
            f"{1000 * pct(single, 0.99):.1f}", f"{1 / batched:.1f}", f"{1000 * batched:.1f}",
            f"{concurrent:.1f}", f"{1000 * statistics.median(latencies):.0f}",
            f"{1000 * pct(latencies, 0.99):.0f}", f"{f1['department']:.3f}",
            f"{f1['severity']:.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="fp32-256,int8-256,fp32-128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tuned-dir", type=Path, default=TUNED,
                        help="adapters.safetensors and head-tuned.json of `classify tune --out`")
    args = parser.parse_args()
    examples = [e for e in load() if e.split == "E"]
    texts = [e.text for e in examples]
    truth = {task: [str(getattr(e, task)) for e in examples] for task in ("department", "severity")}
    header = ["config", "single/s", "p50 ms", "p99 ms", "batch/s", "ms/msg", "conc/s",
              "conc p50", "conc p99", "dept F1", "sev F1"]
    rows = [run(config, texts, truth, args.threads, args.tuned_dir)
            for config in args.configs.split(",")]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
    mean_chars = statistics.mean(len(t) for t in texts)
    print(f"{len(texts)} messages of the evaluation split (mean {mean_chars:.0f} characters), "
          f"{args.threads} torch threads; single = one message per call, batch = 32 per call, "
          "conc = 16 threads through the micro-batcher (latency per request)")


if __name__ == "__main__":
    main()
