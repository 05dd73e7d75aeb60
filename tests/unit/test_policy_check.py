"""`intake-bot policy check`: the documented JSON-lines contract, through the real CLI."""

from __future__ import annotations

import io
import json
import sys
from itertools import product as cartesian

import pytest

from bot.cli import main
from bot.sla.rules import Policy

ANSWER_KEYS = ["entitled", "billable", "price_eur", "included_left", "target_hours", "clock",
               "due"]


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        lines: list[str]) -> tuple[int, list[dict[str, object]]]:
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    code = main(["policy", "check"])
    out = capsys.readouterr().out.splitlines()
    return code, [json.loads(line) for line in out]


def case(**overrides: object) -> str:
    base: dict[str, object] = {
        "product": "dehosted", "plan": "basic-plus", "department": "trouble", "severity": "C",
        "language": "de", "received": "2026-11-20T17:00:00+01:00", "used": 0,
    }
    base.update(overrides)
    return json.dumps(base)


def test_answers_the_worked_example(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, answers = run(monkeypatch, capsys, [case(used=2)])
    assert code == 0
    assert answers == [{
        "entitled": True, "billable": True, "price_eur": "85.00", "included_left": 0,
        "target_hours": 8, "clock": "business_hours", "due": "2026-11-23T15:00:00+01:00",
    }]
    assert list(answers[0]) == ANSWER_KEYS


def test_every_plan_of_both_lines_is_answered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], policy: Policy
) -> None:
    lines = [
        case(product=product, plan=plan, department=department, severity=severity,
             language=language)
        for product in policy.products
        for plan in [*policy.products[product].plans, None]
        for department, severity, language in cartesian(
            ["accounting", "trouble", "developer", "consulting"], "ABC", ["de", "en"])
    ]
    code, answers = run(monkeypatch, capsys, lines)
    assert code == 0 and len(answers) == len(lines) == 11 * 24
    assert all(list(answer) == ANSWER_KEYS for answer in answers)


def test_bad_lines_get_an_error_and_the_rest_are_answered(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        case(),
        "{not json",
        case(plan="gold"),
        case(received="2026-11-20T17:00:00"),  # no offset
        case(used=-1),
        case(used=True),
        json.dumps({"product": "m365"}),
        case(extra=1),
        case(department="sales"),
        case(plan=None, product="m365"),
    ]
    code, answers = run(monkeypatch, capsys, lines)
    assert code == 1
    assert len(answers) == len(lines)
    assert "error" not in answers[0] and "error" not in answers[-1]
    errors = [answer.get("error", "") for answer in answers[1:-1]]
    assert all(isinstance(e, str) and e.startswith(f"line {n}: ")
               for n, e in enumerate(errors, start=2))
    assert "not valid JSON" in errors[0]
    assert "'gold'" in errors[1] and "basic-plus" in errors[1]
    assert "offset" in errors[2]
    assert "'used'" in errors[3] and "'used'" in errors[4]
    assert "missing fields: plan" in errors[5]
    assert "unknown field: extra" in errors[6]
    assert "'sales'" in errors[7] and "'trouble'" in errors[7]


def test_reads_a_file(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    cases = tmp_path / "cases.jsonl"
    cases.write_text(case(severity="A", received="2026-11-21T23:00:00+01:00", plan=None) + "\n")
    assert main(["policy", "check", "--file", str(cases)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["price_eur"] == "510.00" and answer["clock"] == "around_the_clock"


def test_a_broken_policy_file_stops_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    bad = tmp_path / "policy.toml"
    bad.write_text("[business_hours]\nopen = 8\n")
    monkeypatch.setenv("POLICY_FILE", str(bad))
    monkeypatch.setattr(sys, "stdin", io.StringIO(case()))
    assert main(["policy", "check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("intake-bot: policy file") and "business_hours" in err
