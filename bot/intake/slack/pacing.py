"""Slack's documented rates, kept before sending rather than discovered by 429s (pure: the
caller passes the time, in seconds of a monotonic clock).

chat.postMessage: one message a second per channel. Other methods: their tier's calls a
minute, per method across the workspace (bursts up to a minute's worth tolerated). A 429's
Retry-After pauses the same bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

# calls a minute by tier (api.slack.com/docs/rate-limits): Tier 2 20+, Tier 3 50+, Tier 4 100+
TIER_PER_MINUTE = {
    "chat.update": 50.0, "chat.delete": 50.0, "reactions.add": 50.0,
    "conversations.history": 50.0, "conversations.replies": 50.0,
    "chat.postEphemeral": 100.0, "users.info": 100.0, "conversations.info": 100.0,
}
DEFAULT_PER_MINUTE = 20.0  # an unlisted method: assume Tier 2
PER_CHANNEL = "chat.postMessage"


@dataclass
class Bucket:
    """A token bucket: `capacity` calls at once, refilled at `rate` a second."""

    capacity: float
    rate: float
    tokens: float
    at: float
    paused_until: float = 0.0

    def wait(self, now: float) -> float:
        """Seconds until one call may go (0: now)."""
        tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        refill = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        return max(refill, self.paused_until - now, 0.0)

    def spend(self, now: float) -> None:
        """One call went out at `now`."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate) - 1
        self.at = now


class Pacer:
    """One bucket per (method, channel) for chat.postMessage, per method for the rest."""

    def __init__(self, post_interval: float = 1.0) -> None:
        self.post_interval = post_interval
        self.buckets: dict[tuple[str, str], Bucket] = {}

    def _bucket(self, method: str, channel: str, now: float) -> Bucket:
        key = (method, channel if method == PER_CHANNEL else "")
        bucket = self.buckets.get(key)
        if bucket is None:
            if method == PER_CHANNEL:
                rate = 1 / self.post_interval if self.post_interval > 0 else 1e9
                bucket = Bucket(capacity=1, rate=rate, tokens=1, at=now)
            else:
                per_minute = TIER_PER_MINUTE.get(method, DEFAULT_PER_MINUTE)
                bucket = Bucket(capacity=per_minute, rate=per_minute / 60, tokens=per_minute,
                                at=now)
            self.buckets[key] = bucket
        return bucket

    def wait(self, method: str, channel: str, now: float) -> float:
        """Seconds before this call may go without exceeding Slack's rate (0: now)."""
        return self._bucket(method, channel, now).wait(now)

    def spend(self, method: str, channel: str, now: float) -> None:
        """Count one call (at the time Slack answered it: never closer than the rate)."""
        self._bucket(method, channel, now).spend(now)

    def pause(self, method: str, channel: str, seconds: float, now: float) -> None:
        """Slack said 429: nothing more of this method (in this channel) for `seconds`."""
        bucket = self._bucket(method, channel, now)
        bucket.paused_until = max(bucket.paused_until, now + seconds)
