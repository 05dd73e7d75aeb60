"""Group commit: small writes that wait for the database at the same time share one transaction.

A burst of mail is a burst of one-row transactions, each waiting for the writer and paying its
own commit (an fsync on SQLite). Here whoever arrives while a transaction is running waits for
the next one, which takes everything that waited: one commit for all of them. A write that fails
is retried alone, so one bad message never costs the others their answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from models.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")
Work = Callable[[AsyncSession], Awaitable[Any]]


class GroupCommit:
    """Runs each `work(session)` in a transaction shared with the others that waited."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: list[tuple[Work, asyncio.Future[Any]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed, for the tests and the benchmark

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`work`'s result once its transaction has committed; its exception if it failed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        result: T = await asyncio.shield(future)
        return result

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.db.session() as session:
                    results = [await work(session) for work, _ in batch]
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                log.warning("event=group_commit_split size=%d error=%s", len(batch),
                            type(exc).__name__)
                for one in batch:
                    await self._alone(*one)
                continue
            self.transactions += 1
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result)

    async def _alone(self, work: Work, future: asyncio.Future[Any]) -> None:
        try:
            async with self.db.session() as session:
                result = await work(session)
        except Exception as exc:
            _settle(future, exc)
            return
        self.transactions += 1
        _settle(future, result)


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # its caller is gone; the work stands (a retry finds it stored)
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
