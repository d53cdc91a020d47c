"""The in-process level: least recently used out first, bounded by entries and bytes,
entries gone at their expiry time."""

from __future__ import annotations

from lens.cache.memory import MemoryCache, entry_bytes

from tests.cache.conftest import Clock


def test_an_entry_lives_until_its_expiry_time() -> None:
    clock = Clock()
    lru = MemoryCache(clock=clock)
    assert lru.put("k", "v", clock.now + 10)
    assert lru.get("k") == ("v", clock.now + 10)
    clock.advance(9.999)
    assert lru.get("k") is not None
    clock.advance(0.001)
    assert lru.get("k") is None
    assert len(lru) == 0 and lru.bytes == 0


def test_an_entry_already_expired_is_not_stored() -> None:
    clock = Clock()
    lru = MemoryCache(clock=clock)
    assert not lru.put("k", "v", clock.now)
    assert len(lru) == 0


def test_the_least_recently_used_goes_first_past_the_entry_bound() -> None:
    clock = Clock()
    lru = MemoryCache(max_entries=2, clock=clock)
    later = clock.now + 60
    lru.put("a", "1", later)
    lru.put("b", "2", later)
    assert lru.get("a") is not None  # a is now the most recently used
    lru.put("c", "3", later)
    assert lru.get("b") is None
    assert lru.get("a") == ("1", later) and lru.get("c") == ("3", later)
    assert len(lru) == 2


def test_the_byte_bound_evicts_and_refuses_what_alone_is_too_big() -> None:
    clock = Clock()
    size = entry_bytes("a", "x" * 40)
    lru = MemoryCache(max_bytes=2 * size, clock=clock)
    later = clock.now + 60
    assert lru.put("a", "x" * 40, later)
    assert lru.put("b", "y" * 40, later)
    assert lru.bytes == 2 * size
    assert lru.put("c", "z" * 40, later)  # over the bound: a (least recent) goes
    assert lru.get("a") is None and lru.bytes == 2 * size
    assert not lru.put("huge", "h" * (3 * size), later)
    assert lru.get("huge") is None and len(lru) == 2


def test_replacing_a_key_counts_its_bytes_once() -> None:
    clock = Clock()
    lru = MemoryCache(clock=clock)
    lru.put("k", "short", clock.now + 5)
    lru.put("k", "a longer value", clock.now + 5)
    assert lru.bytes == entry_bytes("k", "a longer value")
    assert lru.get("k") == ("a longer value", clock.now + 5)
