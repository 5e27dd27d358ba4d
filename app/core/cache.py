"""One bounded, thread-safe in-process cache, for every per-process memo in the app.

Each cache states its invalidation rule where it is created (a frozen run never changes, a
published instrument version is immutable, a campaign is re-read after a TTL...). Every cache
registers itself, so :func:`clear_all` forgets everything this process remembers (tests call it
when they empty the tables; ids restart then).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_ALL: weakref.WeakSet[BoundedCache[Any, Any]] = weakref.WeakSet()


class BoundedCache(Generic[K, V]):
    """A least-recently-used mapping of at most ``max_entries``, each entry optionally living
    ``ttl_seconds``.

    Values are shared between threads and requests: keep only immutable values or detached
    copies nobody writes through.
    """

    def __init__(self, name: str, *, max_entries: int, ttl_seconds: float | None = None) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.name = name
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.add(self)

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if expires and time.monotonic() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, *, ttl_seconds: float | None = None) -> None:
        ttl = ttl_seconds if ttl_seconds is not None else self.ttl_seconds
        expires = time.monotonic() + ttl if ttl else 0.0
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The cached value, or ``load()`` kept for next time (two threads may both load)."""
        value = self.get(key)
        if value is None:
            value = load()
            self.put(key, value)
        return value

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def clear_all() -> None:
    """Forget what every cache of this process holds."""
    for cache in list(_ALL):
        cache.clear()
