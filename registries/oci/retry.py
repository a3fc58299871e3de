"""Bounded retries with exponential backoff and jitter for transient registry failures."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TypeVar

from .errors import (
    RegistryError,
    RegistryTimeout,
    RegistryUnreachable,
    ServerError,
    TooManyRequests,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Failures that may pass by themselves: the network, an overloaded or restarting registry.
TRANSIENT_ERRORS: tuple[type[RegistryError], ...] = (
    RegistryUnreachable,
    RegistryTimeout,
    ServerError,
    TooManyRequests,
)
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """True for a failure worth another try that no retry loop has given up on yet."""
    return isinstance(exc, TRANSIENT_ERRORS) and not getattr(exc, "retries_exhausted", False)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class RetryPolicy:
    """`attempts` tries in all; waits backoff, 2×backoff, 4×… (±25 % jitter, ≤ max_delay)."""

    attempts: int = 3
    backoff: float = 0.2
    max_delay: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """How long to wait after failed attempt number `attempt` (1-based)."""
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and asked >= 0:
            # Respect the registry's Retry-After, but never wait longer than the cap.
            return min(float(asked), self.max_delay)
        base = self.backoff * (2 ** (attempt - 1))
        return min(self.max_delay, base * self.rng.uniform(0.75, 1.25))

    def run(
        self, call: Callable[[], T], *, retry_if: Callable[[BaseException], bool] = is_transient
    ) -> T:
        """Call `call` until it succeeds, fails for good, or the attempts are used up."""
        attempts = max(1, self.attempts)
        for attempt in range(1, attempts + 1):
            try:
                return call()
            except Exception as exc:
                if not retry_if(exc):
                    raise
                if attempt >= attempts:
                    if attempts > 1:
                        # Outer loops (e.g. a whole blob copy) must not multiply the attempts.
                        exc.retries_exhausted = True  # type: ignore[attr-defined]
                    raise
                wait = self.delay(attempt, exc)
                log.info(
                    "transient registry failure (attempt %d of %d, next in %.2fs): %s",
                    attempt,
                    attempts,
                    wait,
                    exc,
                )
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


NO_RETRY = RetryPolicy(attempts=1)
