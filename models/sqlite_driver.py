"""aiosqlite, with the calls that cannot wait run on the event loop's own thread.

aiosqlite hands every call (make a cursor, execute, fetch, close the cursor) to the
connection's thread and back: four round trips per statement, each two thread switches and a
wake-up of the loop. Measured here that is ~0.3 ms of CPU per statement against ~0.015 ms for
the statement itself, and under load each switch also waits for the GIL and for a core.

Most of those calls cannot wait for anything, and run where they are called:
- making, fetching from and closing a cursor, and a rollback;
- on a read-only connection, everything: in WAL mode a deferred BEGIN takes no lock, a
  reader's statements read a snapshot that no writer blocks, and its COMMIT syncs nothing;
- on a writing connection, every statement inside a transaction: its BEGIN IMMEDIATE took
  SQLite's write lock, so nothing in it waits for another connection;
- that BEGIN IMMEDIATE itself, when the write lock is free (tried without waiting).
What can wait still goes to the connection's thread, so that the loop never stalls on it:
BEGIN IMMEDIATE while another process holds the write lock (it waits up to the busy timeout),
COMMIT on a writing connection (it syncs the WAL to disk and may checkpoint), any other
statement outside a transaction, and opening and closing the connection.

Calls stay in order: while a call is in the thread, even one whose caller was cancelled, the
next call goes to the thread too.

Work that nobody waits on can give way: inside `giving_way()` (the processing of stored mail)
every statement first lets the event loop run what else is ready. A statement that runs here
never suspends its caller, so without that a processing transaction's ~13 statements and the
Python between them ran without handing the loop back (its body took 14 ms median during a
burst, in an instrumented run), and every SMTP exchange and store that became ready meanwhile
waited for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import aiosqlite

# Calls on a cursor (and the connection's rollback) that touch no lock and sync nothing.
NEVER_WAIT = frozenset({"cursor", "fetchone", "fetchmany", "fetchall", "rollback"})
STATEMENTS = frozenset({"execute", "executemany"})
_giving_way: ContextVar[bool] = ContextVar("giving_way", default=False)


@contextlib.contextmanager
def giving_way() -> Iterator[None]:
    """Statements run in this context (this task) let the loop's other ready work go first."""
    token = _giving_way.set(True)
    try:
        yield
    finally:
        _giving_way.reset(token)


class LoopConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs the calls that cannot wait on the caller's thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], *,
                 read_only: bool = False) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy sets it for aiosqlite's own connections
        self.read_only = read_only
        self.in_thread = 0  # calls handed to the thread that have not finished there

    def runs_here(self, function: Callable[..., Any], args: tuple[Any, ...] = ()) -> bool:
        """Whether `function(*args)` (a bound sqlite3 method) can run on the caller's thread."""
        connection = self._connection
        assert connection is not None
        name = getattr(function, "__name__", "")
        on_cursor = isinstance(getattr(function, "__self__", None), sqlite3.Cursor)
        if name in NEVER_WAIT or (name == "close" and on_cursor):
            return True
        if name not in STATEMENTS or not on_cursor:
            return self.read_only and name == "commit"
        return connection.in_transaction or (self.read_only and _sql(args) == "BEGIN")

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if _giving_way.get() and getattr(fn, "__name__", "") in STATEMENTS:
            await asyncio.sleep(0)
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if not self.in_thread:  # else this call waits its turn behind those in the thread
            if self.runs_here(fn, args):
                return fn(*args, **kwargs)
            if self._took_write_lock(fn, args):
                return getattr(fn, "__self__", None)  # what sqlite3's Cursor.execute returns
        loop = asyncio.get_running_loop()

        def in_thread() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    loop.call_soon_threadsafe(self._left_thread)

        self.in_thread += 1
        return await super()._execute(in_thread)  # type: ignore[no-untyped-call]

    def _took_write_lock(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        """BEGIN IMMEDIATE here and now if the write lock is free; False to wait in the thread."""
        connection = self._connection
        if (connection is None or self.read_only or getattr(fn, "__name__", "") != "execute"
                or _sql(args) != "BEGIN IMMEDIATE"):
            return False
        waits = connection.execute("PRAGMA busy_timeout").fetchone()[0]
        connection.execute("PRAGMA busy_timeout=0")
        try:
            fn(*args)
        except sqlite3.OperationalError as exc:
            # SQLITE_BUSY, or one of its extended codes (recovery, snapshot) in the low byte
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout={int(waits)}")
        return True

    def _left_thread(self) -> None:
        self.in_thread -= 1


def _sql(args: tuple[Any, ...]) -> str:
    """The statement of an execute call, in capitals without surrounding space."""
    return args[0].strip().upper() if args and isinstance(args[0], str) else ""


def connector(*args: Any, read_only: bool = False, **options: Any) -> Callable[[], Any]:
    """An `async_creator` for SQLAlchemy: a LoopConnection made by sqlite3.connect(*args,
    **options), which must include check_same_thread=False. A `read_only` connection refuses
    to write (PRAGMA query_only), so that none of its statements can wait for the write lock."""

    async def connect() -> LoopConnection:
        def open_file() -> sqlite3.Connection:
            opened: sqlite3.Connection = sqlite3.connect(*args, **options)
            if read_only:
                opened.execute("PRAGMA query_only=ON")
            return opened

        connection = LoopConnection(open_file, read_only=read_only)
        await connection  # starts its thread and opens the file there
        return connection

    return connect
