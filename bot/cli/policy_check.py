"""`intake-bot policy check`: JSON lines of cases in, JSON lines of answers out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain import Department, Language, Severity
from bot.sla.engine import Assessment, Case, Engine

FIELDS = ("product", "plan", "department", "severity", "language", "received", "used")


class CaseError(ValueError):
    """A case line that cannot be answered; the message is a sentence for the user."""


def _enum(kind: type[Department] | type[Severity] | type[Language], key: str, value: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise CaseError(f"field '{key}' is {value!r}; expected one of {allowed}") from None


def parse_case(engine: Engine, line: str) -> Case:
    """Turn one JSON line into a Case, or raise CaseError saying what is wrong."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CaseError(f"the line is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise CaseError("the line must be a JSON object")
    missing = [key for key in FIELDS if key not in raw]
    if missing:
        raise CaseError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    extra = sorted(set(raw) - set(FIELDS))
    if extra:
        raise CaseError(f"unknown field{'s' if len(extra) > 1 else ''}: {', '.join(extra)}")
    product, plan = raw["product"], raw["plan"]
    if not isinstance(product, str) or product not in engine.policy.products:
        known = ", ".join(repr(key) for key in engine.policy.products)
        raise CaseError(f"field 'product' is {product!r}; expected one of {known}")
    plans = engine.policy.products[product].plans
    if plan is not None and (not isinstance(plan, str) or plan not in plans):
        known = ", ".join(repr(key) for key in plans)
        raise CaseError(f"field 'plan' is {plan!r}; {product} has {known} or null")
    received = raw["received"]
    try:
        accepted = datetime.fromisoformat(received) if isinstance(received, str) else None
    except ValueError:
        accepted = None
    if accepted is None or accepted.utcoffset() is None:
        raise CaseError(
            f"field 'received' is {received!r}; expected an ISO 8601 time with an offset"
        )
    used = raw["used"]
    if isinstance(used, bool) or not isinstance(used, int) or used < 0:
        raise CaseError(f"field 'used' is {used!r}; expected a whole number >= 0")
    return Case(
        product=product,
        plan=plan,
        department=_enum(Department, "department", raw["department"]),
        severity=_enum(Severity, "severity", raw["severity"]),
        language=_enum(Language, "language", raw["language"]),
        accepted=accepted,
        used=used,
    )


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def render(engine: Engine, result: Assessment) -> dict[str, Any]:
    """The answer object, with the fields in the documented order."""
    return {
        "entitled": result.entitled,
        "billable": result.billable,
        "price_eur": f"{result.price_eur:.2f}",
        "included_left": result.included_left,
        "target_hours": _number(result.target_hours),
        "clock": result.clock.value,
        "due": result.due.astimezone(engine.calendar.zone).isoformat(),
    }


def answer_lines(engine: Engine, lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Yield (JSON answer, ok) for each non-blank input line, in order."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            answer = render(engine, engine.assess(parse_case(engine, line)))
            yield json.dumps(answer), True
        except CaseError as exc:
            yield json.dumps({"error": f"line {number}: {exc}."}), False
