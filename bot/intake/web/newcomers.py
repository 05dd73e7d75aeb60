"""How many new visitors one client address may create an hour (WEBCHAT_NEW_VISITORS_PER_HOUR).

Counted in this process's memory, not in the store: the limit only keeps a script from filling
`webchat_visitor` with rows, and a per-process count bounds that as well (with n replicas at
most n times the limit); the database never holds a visitor's IP address (personal data, with
a retention question of its own), and a tokenless `hello` costs no query. A restart forgets the
counts: at worst one more hour's allowance.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from datetime import datetime, timedelta

WINDOW = timedelta(hours=1)


class NewcomerLimit:
    """A sliding hour per client address; pure (the caller passes `now`)."""

    def __init__(self, per_hour: int, *, max_addresses: int = 100_000) -> None:
        self.per_hour = per_hour
        self.max_addresses = max_addresses  # beyond it, addresses quiet for an hour are dropped
        self._made: dict[str, deque[datetime]] = {}

    def __len__(self) -> int:
        """How many client addresses are remembered."""
        return len(self._made)

    def allow(self, address: str, now: datetime) -> bool:
        """Count one new visitor from `address` at `now`; False (and not counted) past the
        limit."""
        made = self._made.setdefault(client(address), deque())
        while made and made[0] <= now - WINDOW:
            made.popleft()
        if len(made) >= self.per_hour:
            return False
        made.append(now)
        if len(self._made) > self.max_addresses:
            self._forget(now)
        return True

    def _forget(self, now: datetime) -> None:
        """Drop the addresses with no new visitor within the hour (memory stays bounded)."""
        quiet = [a for a, made in self._made.items() if not made or made[-1] <= now - WINDOW]
        for address in quiet:
            del self._made[address]
        while len(self._made) > self.max_addresses:  # all busy: the longest-known go first
            del self._made[next(iter(self._made))]


def client(address: str) -> str:
    """Whom an address stands for: an IPv4 address, or an IPv6 address's /64 (one host or
    household has a whole /64 to pick addresses from)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else str(ip)
