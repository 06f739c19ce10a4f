"""The per-process cache of pixel sources (least recently used first out)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from tessphot.sources.base import PixelSource

#: Data sources (prepared-data files, TPFs) kept open per process (each holds its average
#: image and catalog in memory).
CACHE_SIZE = 4

_CACHE: OrderedDict[tuple, PixelSource] = OrderedDict()


def cached_source(key: tuple, path: Path, make: Callable[[], PixelSource]) -> PixelSource:
    """A source from the per-process cache, made with ``make()`` when missing or stale.

    A cached source is stale when its file changed on disk since it was read.
    """
    cached = _CACHE.get(key)
    if cached is not None:
        try:
            fresh = path.stat().st_mtime_ns == cached.mtime
        except OSError:
            fresh = False
        if fresh:
            _CACHE.move_to_end(key)
            return cached
        cached.close()
        del _CACHE[key]
    data = make()
    _CACHE[key] = data
    while len(_CACHE) > CACHE_SIZE:
        _, old = _CACHE.popitem(last=False)
        old.close()
    return data


def clear_cache() -> None:
    """Close and forget every cached source."""
    while _CACHE:
        _, data = _CACHE.popitem()
        data.close()
