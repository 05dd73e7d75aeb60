"""Hooks that run after a transaction commits, when it noted a change of some kind.

Process-wide: the sessions that write rows (mail intake, Slack actions, the CLI) do not know the
loops that want to wake up when they commit (the reminder scheduler, the Slack outbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

Hook = Callable[[], None]

log = logging.getLogger(__name__)


class CommitHooks:
    """The hooks of one kind of change; `note(session)` runs them after that session commits."""

    def __init__(self, kind: str) -> None:
        self._marker = f"commit_hooks:{kind}"
        self._hooks: list[Hook] = []

    def subscribe(self, hook: Hook) -> Callable[[], None]:
        """Run `hook` after every commit that noted this change; returns the unsubscriber."""
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    def note(self, session: AsyncSession) -> None:
        """This transaction made the change: the hooks run once after it commits."""
        sync = session.sync_session
        if sync.info.get(self._marker):
            return
        sync.info[self._marker] = True

        def fire(committed: Session) -> None:
            committed.info.pop(self._marker, None)
            for hook in list(self._hooks):
                # the commit has happened: a hook that fails (a stopped loop's wake-up) must not
                # make the caller believe it did not, and retry what is already stored
                try:
                    hook()
                except Exception as exc:
                    log.warning("event=commit_hook_failed kind=%s error=%s",
                                self._marker.removeprefix("commit_hooks:"),
                                f"{type(exc).__name__}: {exc}"[:200])

        event.listen(sync, "after_commit", fire, once=True)
