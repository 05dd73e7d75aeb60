"""Agents' verdicts on the model's triage, read from the tickets they confirmed or corrected.

A ticket an agent confirmed carries the model's suggestion (predicted_*) beside the final values
(department, severity, product); `classify eval --confirmed` reports how often they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.config import Settings
from models.db import Database
from models.tables import Ticket

TASKS = ("department", "severity", "product")


@dataclass(frozen=True)
class Agreement:
    """How often agents kept the model's suggestion for one task."""

    task: str
    n: int
    agreed: int
    corrections: dict[str, int]  # "predicted->final" -> count

    @property
    def share(self) -> float | None:
        """The share agreed, None when no ticket was confirmed."""
        return self.agreed / self.n if self.n else None


def agreement(rows: list[dict[str, Any]]) -> list[Agreement]:
    """Per task: of the confirmed tickets the model triaged, how many kept its suggestion."""
    result = []
    for task in TASKS:
        pairs = [(row[f"predicted_{task}"], row[task]) for row in rows
                 if row[f"predicted_{task}"] is not None]
        corrections: dict[str, int] = {}
        for predicted, final in pairs:
            if predicted != final:
                key = f"{predicted}->{final}"
                corrections[key] = corrections.get(key, 0) + 1
        result.append(Agreement(task=task, n=len(pairs),
                                agreed=sum(p == f for p, f in pairs), corrections=corrections))
    return result


async def confirmed_since(db: Database, since: datetime) -> list[dict[str, Any]]:
    """The model's and the final triage of every ticket an agent confirmed since `since`."""
    async with db.reader() as session:
        tickets = (await session.exec(select(Ticket).where(
            col(Ticket.confirmed_at).is_not(None), col(Ticket.confirmed_at) >= since,
            col(Ticket.model_version).is_not(None)))).all()
    return [{field: getattr(t, field) for field in
             (*TASKS, *(f"predicted_{task}" for task in TASKS))} for t in tickets]


async def agreement_report(db: Database, settings: Settings, days: int, now: datetime) -> str:
    """`classify eval --confirmed`: agreement per task over the last `days` days, as text."""
    rows = await confirmed_since(db, now - timedelta(days=days))
    lines = [f"agents confirmed {len(rows)} model-triaged tickets in the last {days} days",
             f"{'task':<11} {'n':>5} {'agreed':>7} {'share':>6}  corrections"]
    for item in agreement(rows):
        share = "-" if item.share is None else f"{item.share:.2f}"
        fixes = ", ".join(f"{k} {v}" for k, v in sorted(item.corrections.items()))
        lines.append(f"{item.task:<11} {item.n:>5} {item.agreed:>7} {share:>6}  {fixes}")
    return "\n".join(lines)
