"""Which threads of this process are answering a request now (Django's request signals)."""

from __future__ import annotations

import threading
import time
from collections import Counter


class InFlight:
    """Requests being answered, by thread; `wait_idle` waits until no other thread is busy."""

    def __init__(self) -> None:
        self._busy: Counter[threading.Thread] = Counter()
        self._changed = threading.Condition()

    def started(self, **kwargs) -> None:
        with self._changed:
            self._busy[threading.current_thread()] += 1

    def finished(self, **kwargs) -> None:
        with self._changed:
            thread = threading.current_thread()
            self._busy[thread] -= 1
            if self._busy[thread] <= 0:
                del self._busy[thread]
            self._changed.notify_all()

    def _others_busy(self) -> bool:
        # A thread that ended without `finished` (a broken connection) no longer counts.
        me = threading.current_thread()
        return any(t is not me and t.is_alive() for t in self._busy)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no other thread answers a request; False when `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._others_busy():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.1))
        return True

    def connect(self) -> None:
        """Count from now on (request_started/request_finished of every handler)."""
        from django.core.signals import request_finished, request_started

        request_started.connect(self.started, dispatch_uid=f"inflight-started-{id(self)}")
        request_finished.connect(self.finished, dispatch_uid=f"inflight-finished-{id(self)}")
