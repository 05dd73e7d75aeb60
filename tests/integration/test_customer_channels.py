"""One Slack channel belongs to one customer: an import that maps a channel to two customers
(under any teams) is refused with a sentence naming both, exit code 1, nothing written; on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_service import cli

HEADER = "number,name,emails,slack,contact_24_7,dehosted,m365\n"


def csv(tmp_path: Path, name: str, rows: str) -> str:
    path = tmp_path / name
    path.write_text(HEADER + rows, encoding="utf-8")
    return str(path)


def test_one_file_mapping_a_channel_to_two_customers_is_refused(
        database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    assert cli(env, "db", "upgrade").returncode == 0
    result = cli(env, "customers", "import", csv(tmp_path, "two.csv",
                 "K-1,Eins GmbH,@eins.example,T0EINS/C0SHARED,,basic,\n"
                 "K-2,Zwei GmbH,@zwei.example,T0ZWEI/C0SHARED,,basic,\n"))
    assert result.returncode == 1
    assert "slack channel C0SHARED would belong to customers K-1, K-2" in result.stderr
    assert "Traceback" not in result.stderr
    listed = cli(env, "customers", "list", "--json")
    assert listed.stdout.strip() == ""  # nothing written


def test_a_channel_stored_for_another_customer_is_refused(
        database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    assert cli(env, "db", "upgrade").returncode == 0
    first = cli(env, "customers", "import", csv(tmp_path, "one.csv",
                "K-1,Eins GmbH,@eins.example,T0EINS/C0SHARED,,basic,\n"))
    assert first.returncode == 0, first.stderr
    result = cli(env, "customers", "import", csv(tmp_path, "other.csv",
                 "K-2,Zwei GmbH,@zwei.example,T0ZWEI/C0SHARED,,basic,\n"))
    assert result.returncode == 1
    assert "slack channel C0SHARED would belong to customers K-1, K-2" in result.stderr
