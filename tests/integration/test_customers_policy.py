"""Customers and the policy agree, or nothing starts and nothing is imported (issue 7 items 8
and 10), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

import bot
from bot.app import StartupError, build
from bot.cases.customers_csv import parse_customer_csv
from bot.config import DEFAULT_POLICY_FILE
from bot.sla.rules import Policy
from models.customers import upsert_customers
from models.db import Database
from models.tables import Customer
from tests.integration.conftest import Clock, make_settings
from tests.integration.test_service import cli

pytestmark = pytest.mark.slow  # `intake-bot` child processes

DEMO = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")


def policy_without_standard(tmp_path: Path) -> Path:
    """The shipped policy with deHOSTED Standard (held by D-1003) renamed away."""
    shipped = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    assert "[products.dehosted.plans.standard]" in shipped
    path = tmp_path / "policy.toml"
    path.write_text(shipped.replace("[products.dehosted.plans.standard]",
                                    "[products.dehosted.plans.standard-2027]"))
    return path


async def add_demo(db: Database, policy: Policy) -> None:
    async with db.session() as session:
        await upsert_customers(session, parse_customer_csv(DEMO, policy), now=Clock()())


async def numbers(db: Database) -> list[str]:
    async with db.session() as session:
        return sorted((await session.exec(select(Customer.number))).all())


async def test_start_refuses_customers_whose_plan_the_policy_lacks(
    db: Database, database_url: str, tmp_path: Path, policy: Policy
) -> None:
    await add_demo(db, policy)
    await db.dispose()
    settings = make_settings(tmp_path, database_url, policy_file=policy_without_standard(tmp_path))
    service = build(settings, clock=Clock())
    with pytest.raises(StartupError) as info:
        await service.start()
    await service.stop()
    assert "dehosted:standard (held by D-1003)" in str(info.value)
    assert service.smtp is None  # no mail was accepted


def test_serve_exits_2_naming_customers_and_plans(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "CLASSIFIER": "keywords"}
    assert cli(env, "db", "upgrade").returncode == 0
    assert cli(env, "customers", "import", "--demo").returncode == 0
    env["POLICY_FILE"] = str(policy_without_standard(tmp_path))
    result = cli(env, "serve")
    assert result.returncode == 2
    assert "dehosted:standard (held by D-1003)" in result.stderr
    assert "Traceback" not in result.stderr


async def test_import_is_refused_while_stored_customers_hold_a_lacking_plan(
    db: Database, database_url: str, tmp_path: Path, policy: Policy
) -> None:
    await add_demo(db, policy)
    csv = tmp_path / "new.csv"
    csv.write_text("number,name,emails,dehosted\nK-9,Neu GmbH,@neu.example,basic\n")
    env = {"DATABASE_URL": database_url, "POLICY_FILE": str(policy_without_standard(tmp_path))}
    result = cli(env, "customers", "import", str(csv))
    assert result.returncode == 1
    assert "nothing imported" in result.stderr
    assert "dehosted:standard (held by D-1003)" in result.stderr
    assert "K-9" not in await numbers(db)


async def test_an_address_another_customer_holds_is_named_not_a_traceback(
    db: Database, database_url: str, tmp_path: Path, policy: Policy
) -> None:
    await add_demo(db, policy)
    csv = tmp_path / "clash.csv"
    csv.write_text("number,name,emails,dehosted\nK-9,Neu GmbH,@logistik-nord.de,basic\n")
    result = cli({"DATABASE_URL": database_url}, "customers", "import", str(csv))
    assert result.returncode == 1
    assert "logistik-nord.de (customer K-9) belongs to customer D-1003" in result.stderr
    assert "Traceback" not in result.stderr
    assert "K-9" not in await numbers(db)


async def test_an_address_may_move_between_customers_of_one_import(
    db: Database, database_url: str, tmp_path: Path, policy: Policy
) -> None:
    await add_demo(db, policy)
    csv = tmp_path / "move.csv"
    csv.write_text("number,name,emails,dehosted\nK-9,Neu GmbH,@logistik-nord.de,basic\n"
                   "D-1003,Logistik Nord AG,@logistik-nord.example,standard\n")
    result = cli({"DATABASE_URL": database_url}, "customers", "import", str(csv))
    assert result.returncode == 0, result.stderr
    assert "K-9" in await numbers(db)


async def test_a_slack_team_another_customer_holds_is_refused_naming_both(
    db: Database, database_url: str, tmp_path: Path, policy: Policy
) -> None:
    await add_demo(db, policy)
    csv = tmp_path / "team.csv"
    csv.write_text("number,name,slack,dehosted\nK-9,Neu GmbH,T0LOGNORD/C0NEU,basic\n")
    result = cli({"DATABASE_URL": database_url}, "customers", "import", str(csv))
    assert result.returncode == 1
    assert ("slack team T0LOGNORD would belong to customers D-1003, K-9 "
            "(one Slack team, one customer)") in result.stderr
    assert "Traceback" not in result.stderr
    assert "K-9" not in await numbers(db)


async def test_one_slack_team_on_two_customers_of_one_import_is_refused(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    csv = tmp_path / "team.csv"
    csv.write_text("number,name,slack,dehosted\nK-8,Alt GmbH,T0SAME/C0ALT,basic\n"
                   "K-9,Neu GmbH,T0SAME/C0NEU,basic\n")
    result = cli({"DATABASE_URL": database_url}, "customers", "import", str(csv))
    assert result.returncode == 1
    assert "slack team T0SAME would belong to customers K-8, K-9" in result.stderr
    assert await numbers(db) == []


async def test_a_team_may_move_between_customers_of_one_import(
    db: Database, database_url: str, tmp_path: Path, policy: Policy
) -> None:
    await add_demo(db, policy)
    csv = tmp_path / "move.csv"
    csv.write_text("number,name,slack,dehosted\nK-9,Neu GmbH,T0LOGNORD/C0NEU,basic\n"
                   "D-1003,Logistik Nord AG,,standard\n")
    result = cli({"DATABASE_URL": database_url}, "customers", "import", str(csv))
    assert result.returncode == 0, result.stderr
    assert "K-9" in await numbers(db)
