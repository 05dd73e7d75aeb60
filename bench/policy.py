"""Benchmark `intake-bot policy check`: cases per second, end to end and in process.

Run: `.venv/bin/python bench/policy.py [N]` (default 10,000 cases). Not part of the tests.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.cli.policy_check import answer_lines
from bot.config import DEFAULT_POLICY_FILE, load_policy
from bot.sla.engine import Engine


def cases(count: int, seed: int = 7) -> list[str]:
    """Random but repeatable cases over every plan, department, severity and a year of times."""
    policy = load_policy(DEFAULT_POLICY_FILE)
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    lines = []
    for _ in range(count):
        product = rng.choice(list(policy.products))
        plan = rng.choice([*policy.products[product].plans, None])
        received = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
        lines.append(json.dumps({
            "product": product, "plan": plan,
            "department": rng.choice(["accounting", "trouble", "developer", "consulting"]),
            "severity": rng.choice("ABC"), "language": rng.choice(["de", "en"]),
            "received": received.isoformat(), "used": rng.randrange(30),
        }))
    return lines


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    lines = cases(count)
    payload = "\n".join(lines) + "\n"

    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot", "policy", "check"], input=payload,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    answered = len(done.stdout.splitlines())
    assert answered == count, f"{answered} answers for {count} cases"

    engine = Engine(load_policy(DEFAULT_POLICY_FILE))
    began = time.perf_counter()
    for _ in answer_lines(engine, lines):
        pass
    inner = time.perf_counter() - began

    print(f"{'measure':<40} {'value':>12}")
    print(f"{'cases':<40} {count:>12,}")
    print(f"{'CLI wall time, incl. start-up (s)':<40} {wall:>12.2f}")
    print(f"{'CLI cases per second':<40} {count / wall:>12,.0f}")
    print(f"{'in-process cases per second':<40} {count / inner:>12,.0f}")


if __name__ == "__main__":
    main()
