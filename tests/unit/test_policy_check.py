"""`intake-bot policy check`: the documented JSON-lines contract, through the real CLI."""

from __future__ import annotations

import io
import json
import sys
from itertools import product as cartesian

import pytest

from bot.cli.main import main
from bot.sla.rules import Policy

ANSWER_KEYS = ["entitled", "billable", "price_eur", "included_left", "target_hours", "clock",
               "due"]


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """`main` builds Settings(): run where no .env is, with no policy from the shell."""
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("POLICY_FILE", raising=False)


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


# The plan tables of ../shared/spec/support-policy.md, written out by hand (not read from the
# policy file), so that the answers below are checked against the spec, value by value:
# plan -> (departments covered, shortest response hours, 24/7 trouble, incidents included).
SPEC_PLANS: dict[tuple[str, str | None], tuple[set[str], int, bool, int]] = {
    ("dehosted", "basic"): ({"accounting", "trouble"}, 8, False, 0),
    ("dehosted", "basic-plus"): ({"accounting", "trouble"}, 6, False, 2),
    ("dehosted", "standard"): ({"accounting", "trouble", "developer"}, 4, True, 5),
    ("dehosted", "professional"): (
        {"accounting", "trouble", "developer", "consulting"}, 2, True, 25),
    ("m365", "basic"): ({"accounting"}, 8, False, 0),
    ("m365", "basic-plus"): ({"accounting", "trouble"}, 6, False, 2),
    ("m365", "basic-plus-advanced"): ({"accounting", "trouble"}, 6, False, 2),
    ("m365", "standard"): ({"accounting", "trouble", "developer"}, 4, False, 5),
    ("m365", "professional"): ({"accounting", "trouble", "developer", "consulting"}, 2, False, 10),
    ("dehosted", None): ({"accounting"}, 0, False, 0),  # pay per incident
    ("m365", None): ({"accounting"}, 0, False, 0),
}
SEVERITY_HOURS = {"A": 2, "B": 4, "C": 8}
BUSINESS_HOURS_PRICE = {"A": "255.00", "B": "159.00", "C": "85.00"}
MONDAY_10 = "2026-11-23T10:00:00+01:00"  # business hours; every deadline falls that day


def spec_answer(product: str, plan: str | None, department: str, severity: str,
                language: str) -> dict[str, object]:
    """What the spec says for a first ticket of the month received Monday 10:00."""
    covered, plan_hours, around_the_clock, included = SPEC_PLANS[(product, plan)]
    entitled = department in covered
    incident = department != "accounting"
    billable = incident and (not entitled or included == 0)
    uses_allowance = incident and not billable
    hours = SEVERITY_HOURS[severity] if billable else max(plan_hours, SEVERITY_HOURS[severity])
    clock = ("around_the_clock"
             if severity == "A" and language == "de" and (around_the_clock or billable)
             else "business_hours")
    return {
        "entitled": entitled, "billable": billable,
        "price_eur": BUSINESS_HOURS_PRICE[severity] if billable else "0.00",
        "included_left": included - 1 if uses_allowance else included,
        "target_hours": hours, "clock": clock,
        "due": f"2026-11-23T{10 + hours:02d}:00:00+01:00",
    }


def test_every_plan_of_both_lines_is_answered_as_the_spec_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], policy: Policy
) -> None:
    keys = [
        (product, plan, department, severity, language)
        for product in policy.products
        for plan in [*policy.products[product].plans, None]
        for department, severity, language in cartesian(
            ["accounting", "trouble", "developer", "consulting"], "ABC", ["de", "en"])
    ]
    lines = [case(product=p, plan=plan, department=d, severity=s, language=lang,
                  received=MONDAY_10) for p, plan, d, s, lang in keys]
    code, answers = run(monkeypatch, capsys, lines)
    assert code == 0
    assert len(answers) == 11 * 24
    for key, answer in zip(keys, answers, strict=True):
        assert (key, answer) == (key, spec_answer(*key))
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
    assert answers[0] == {
        "entitled": True, "billable": False, "price_eur": "0.00", "included_left": 1,
        "target_hours": 8, "clock": "business_hours", "due": "2026-11-23T15:00:00+01:00",
    }
    assert answers[1] == {"error": "line 2: the line is not valid JSON (Expecting property "
                                   "name enclosed in double quotes at column 2)."}
    assert answers[2] == {"error": "line 3: field 'plan' is 'gold'; dehosted has 'basic', "
                                   "'basic-plus', 'standard', 'professional' or null."}
    assert answers[3] == {"error": "line 4: field 'received' is '2026-11-20T17:00:00'; "
                                   "expected an ISO 8601 time with an offset."}
    assert answers[4] == {"error": "line 5: field 'used' is -1; expected a whole number >= 0."}
    assert answers[5] == {"error": "line 6: field 'used' is True; expected a whole number >= 0."}
    assert answers[6] == {"error": "line 7: missing fields: plan, department, severity, "
                                   "language, received, used."}
    assert answers[7] == {"error": "line 8: unknown field: extra."}
    assert answers[8] == {"error": "line 9: field 'department' is 'sales'; expected one of "
                                   "'accounting', 'trouble', 'developer', 'consulting'."}
    assert answers[9] == {
        "entitled": False, "billable": True, "price_eur": "85.00", "included_left": 0,
        "target_hours": 8, "clock": "business_hours", "due": "2026-11-23T15:00:00+01:00",
    }


def test_reads_a_file(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    cases = tmp_path / "cases.jsonl"
    cases.write_text(case(severity="A", received="2026-11-21T23:00:00+01:00", plan=None) + "\n")
    assert main(["policy", "check", "--file", str(cases)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {
        "entitled": False, "billable": True, "price_eur": "510.00", "included_left": 0,
        "target_hours": 2, "clock": "around_the_clock", "due": "2026-11-22T01:00:00+01:00",
    }


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
    assert err.startswith("intake-bot: policy file")
    assert "business_hours" in err
