"""Which instance runs the reminder loop: a PostgreSQL session-level advisory lock.

The lock lives on a dedicated connection, never a pooled one (a pool would hand the session,
and the lock with it, to other work). It goes when the process dies, because PostgreSQL ends
the session when the connection drops. It gives no fencing token: the loop's claims are what
keep a reminder from going out twice. Behind PgBouncer in transaction mode it would not work.
With SQLite the service is one process, and the lock is trivially held.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

import asyncpg
from sqlalchemy.engine import make_url

# "NTREMIND" as a number: one lock per database, the same in every instance
LOCK_KEY = int.from_bytes(b"NTREMIND", "big") >> 1


class Leadership(Protocol):
    """A lock that at most one instance holds."""

    async def acquire(self) -> bool:
        """Try once to take the lock; True when this instance holds it now."""
        ...

    async def held(self) -> bool:
        """Whether the lock is still ours (False once its connection is gone)."""
        ...

    async def release(self) -> None:
        """Give the lock up."""
        ...


class SoleInstance:
    """SQLite: one process, always the leader."""

    async def acquire(self) -> bool:
        """Always True."""
        return True

    async def held(self) -> bool:
        """Always True."""
        return True

    async def release(self) -> None:
        """Nothing to release."""


class AdvisoryLock:
    """pg_try_advisory_lock held on its own connection for as long as this instance leads."""

    def __init__(self, database_url: str, key: int = LOCK_KEY, timeout: float = 5.0) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self.dsn = url.render_as_string(hide_password=False)
        self.key = key
        self.timeout = timeout
        self._connection: asyncpg.Connection | None = None

    async def acquire(self) -> bool:
        """Connect if needed and try the lock once."""
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self.dsn, timeout=self.timeout)
        got = await self._connection.fetchval("SELECT pg_try_advisory_lock($1)", self.key,
                                              timeout=self.timeout)
        return bool(got)

    async def held(self) -> bool:
        """True while the lock's connection answers."""
        if self._connection is None or self._connection.is_closed():
            return False
        try:
            await self._connection.fetchval("SELECT 1", timeout=self.timeout)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self.release()
            return False
        return True

    async def release(self) -> None:
        """Close the connection: the session ends and the lock with it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.timeout)
            if not connection.is_closed():
                connection.terminate()
