"""Backups: `db backup PATH` and `db restore PATH` (into a fresh database).

SQLite: the online backup API (`sqlite3.Connection.backup`) copies a consistent snapshot
while the service keeps writing (WAL: the copy never blocks intake). PostgreSQL: `pg_dump`
in its custom format, `pg_restore` back; the password goes in the environment, never on the
command line. Both refuse to restore into a database that already has tables.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from bot.errors import UserError


class BackupFailed(UserError):
    """A backup or restore that could not be done; the message says why."""


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupFailed("DATABASE_URL names no SQLite file")
    return Path(url.database)


def _tables(connection: sqlite3.Connection) -> int:
    return int(connection.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])


def _sqlite_backup(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupFailed(f"no database at {source}")
    with closing(sqlite3.connect(source, timeout=30)) as src, \
            closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _sqlite_restore(backup: Path, target: Path) -> None:
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as src:
        if not _tables(src):
            raise BackupFailed(f"{backup} is not a SQLite backup with tables")
        target.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(target, timeout=30)) as dst:
            if _tables(dst):
                raise BackupFailed(f"{target} is not empty: restore only into a fresh database")
            src.backup(dst)


def pg_tool(name: str, bin_dir: Path | None) -> str:
    """Where pg_dump or pg_restore is: PG_BIN_DIR, PATH, then the newest Debian install."""
    if bin_dir is not None:
        return str(bin_dir / name)
    found = shutil.which(name)
    if found:
        return found
    installed = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                       key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if installed:
        return str(installed[-1])
    raise BackupFailed(f"{name} not found: install PostgreSQL's client tools or set PG_BIN_DIR")


def _pg_args(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options and environment (the password) for the PostgreSQL tools."""
    args = ["--no-password", "--dbname", url.set(drivername="postgresql", password=None)
            .render_as_string(hide_password=False)]
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                              timeout=6 * 3600)
    except OSError as exc:
        raise BackupFailed(f"cannot run {command[0]}: {exc}") from exc
    if done.returncode != 0:
        raise BackupFailed(f"{Path(command[0]).name} failed ({done.returncode}): "
                           f"{done.stderr.strip()[:500]}")


def backup(database_url: str, path: Path, *, bin_dir: Path | None = None) -> str:
    """Write a backup of the database to `path`; the sentence to print."""
    url = make_url(database_url)
    if path.exists():
        raise BackupFailed(f"{path} exists: name a new file")
    if url.get_backend_name() == "sqlite":
        _sqlite_backup(_sqlite_path(url), path)
        return f"backed up {_sqlite_path(url)} to {path} ({path.stat().st_size} bytes, sqlite)"
    args, env = _pg_args(url)
    _run([pg_tool("pg_dump", bin_dir), "--format=custom", "--file", str(path), *args], env)
    return f"backed up {url.database} to {path} ({path.stat().st_size} bytes, pg_dump custom)"


def restore(database_url: str, path: Path, *, bin_dir: Path | None = None) -> str:
    """Restore a backup from `path` into the (fresh) database; the sentence to print."""
    url = make_url(database_url)
    if not path.is_file():
        raise BackupFailed(f"no backup file at {path}")
    if url.get_backend_name() == "sqlite":
        _sqlite_restore(path, _sqlite_path(url))
        return f"restored {path} into {_sqlite_path(url)}"
    args, env = _pg_args(url)
    listed = subprocess.run(
        [pg_tool("psql", bin_dir), *args, "--tuples-only", "--no-align", "--command",
         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
        env=env, capture_output=True, text=True, check=False, timeout=60)
    if listed.returncode != 0:
        raise BackupFailed(f"cannot reach {url.database}: {listed.stderr.strip()[:300]}")
    if int(listed.stdout.strip() or 0):
        raise BackupFailed(f"{url.database} is not empty: restore only into a fresh database")
    _run([pg_tool("pg_restore", bin_dir), "--no-owner", "--exit-on-error", *args, str(path)],
         env)
    return f"restored {path} into {url.database}"
