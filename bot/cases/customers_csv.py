"""Parse a customer CSV into plain records, checked against the policy's plans (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.errors import UserError
from bot.sla.rules import Policy

BASE_COLUMNS = ("number", "name", "emails", "slack", "contact_24_7")


class CustomerCsvError(UserError):
    """The CSV cannot be imported; the message lists every bad line."""


@dataclass(frozen=True)
class CustomerRecord:
    """One customer organisation as the CSV describes it."""

    number: str
    name: str
    addresses: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    slack: tuple[tuple[str, str], ...] = ()  # (team id, channel id)
    contact_24_7: str | None = None
    plans: dict[str, str] = field(default_factory=dict)  # product line -> plan


def _split(cell: str | None) -> list[str]:
    return [part.strip() for part in (cell or "").split(";") if part.strip()]


def _emails(cell: str | None) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    addresses, domains, problems = [], [], []
    for entry in _split(cell):
        value = entry.lower()
        local, at, domain = value.rpartition("@")
        if at and local:
            addresses.append(value)
        elif domain and "." in domain and " " not in domain:
            domains.append(domain)
        else:
            problems.append(f"'{entry}' is neither an address nor a domain")
    return tuple(addresses), tuple(domains), problems


def _slack(cell: str | None) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    pairs, problems = [], []
    for entry in _split(cell):
        team, slash, channel = entry.partition("/")
        if slash and team and channel:
            pairs.append((team, channel))
        else:
            problems.append(f"slack '{entry}' is not TEAM_ID/CHANNEL_ID")
    return tuple(pairs), problems


def parse_customer_csv(text: str, policy: Policy) -> list[CustomerRecord]:
    """Every row as a record; CustomerCsvError lists all problems, so nothing is half-imported."""
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    products = list(policy.products)
    unknown = [c for c in columns if c not in BASE_COLUMNS and c not in products]
    missing = [c for c in ("number", "name") if c not in columns]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(
                f"unknown column(s) {', '.join(unknown)} (product columns: {', '.join(products)})"
            )
        raise CustomerCsvError("; ".join(parts))
    records: list[CustomerRecord] = []
    problems: list[str] = []
    seen: set[str] = set()
    owners: dict[str, tuple[int, str]] = {}  # address, domain or slack channel -> line, number
    for row in reader:
        line = reader.line_num
        row_problems: list[str] = []
        extra = [cell for cell in row.get(None) or [] if cell.strip()]
        if extra:
            row_problems.append(
                f"{len(extra)} cell(s) beyond the header's {len(columns)} columns: "
                + ", ".join(repr(cell) for cell in extra)
            )
        number = (row.get("number") or "").strip()
        name = (row.get("name") or "").strip()
        if not number or not name:
            row_problems.append("number and name are required")
        if number in seen:
            row_problems.append(f"customer number {number} appears twice")
        seen.add(number)
        addresses, domains, bad_emails = _emails(row.get("emails"))
        slack, bad_slack = _slack(row.get("slack"))
        row_problems += bad_emails + bad_slack
        for key in [*addresses, *domains, *(f"slack {t}/{c}" for t, c in slack)]:
            first = owners.setdefault(key, (line, number))
            if first[1] != number:
                row_problems.append(f"{key} is also on line {first[0]} (customer {first[1]})")
        plans: dict[str, str] = {}
        for product in products:
            plan = (row.get(product) or "").strip()
            if not plan:
                continue
            if plan not in policy.products[product].plans:
                known = ", ".join(policy.products[product].plans)
                row_problems.append(f"{product} plan '{plan}' is not one of {known}")
            plans[product] = plan
        problems += [f"line {line}: {problem}" for problem in row_problems]
        records.append(
            CustomerRecord(
                number=number,
                name=name,
                addresses=addresses,
                domains=domains,
                slack=slack,
                contact_24_7=(row.get("contact_24_7") or "").strip() or None,
                plans=plans,
            )
        )
    if problems:
        raise CustomerCsvError("; ".join(problems))
    return records


def plans_not_in_policy(held: Iterable[tuple[str, str, str]], policy: Policy) -> str:
    """A sentence naming the customers whose plan the policy lacks, or "" when all exist.

    `held` is (customer number, product line, plan) for every plan customers hold.
    """
    missing: dict[str, list[str]] = {}
    for number, product, plan in held:
        line = policy.products.get(product)
        if line is None or plan not in line.plans:
            missing.setdefault(f"{product}:{plan}", []).append(number)
    if not missing:
        return ""
    parts = [f"{plan} (held by {', '.join(sorted(numbers))})"
             for plan, numbers in sorted(missing.items())]
    return ("the policy file lacks plans that customers hold: " + "; ".join(parts)
            + "; add the plans to the policy or move the customers to other plans")
