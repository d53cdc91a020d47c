"""The in-process level: a bounded LRU of JSON strings with an expiry time per entry.

Bounded twice, by entries and by bytes (a container's memory is the function's), the
least recently used going first. Expired entries are dropped when met. Thread-safe
(one lock): Lambda runs one request at a time per container, a test may not.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

Clock = Callable[[], float]
DEFAULT_MAX_ENTRIES = 1024
# A cached /analyze answer is about 3 KB: 16 MiB is thousands of them, 3% of 512 MB.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


def entry_bytes(key: str, value: str) -> int:
    """What an entry is counted as (its text; Python's overhead is the same per entry)."""
    return len(key) + len(value)


class MemoryCache:
    """key -> (value, expires_at); `clock` gives epoch seconds (time.time)."""

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Clock = time.time,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> tuple[str, float] | None:
        """(value, expires_at) when present and not expired; else None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[1] <= self.clock():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return found

    def put(self, key: str, value: str, expires_at: float) -> bool:
        """Keep `value` until `expires_at`; False when it alone is over the byte bound."""
        size = entry_bytes(key, value)
        if size > self.max_bytes or self.max_entries < 1 or expires_at <= self.clock():
            return False
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (value, expires_at)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self._bytes -= entry_bytes(key, value)
