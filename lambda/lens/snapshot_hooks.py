"""The API of the Lambda runtime's `snapshot_restore_py`, for where it is absent.

Lambda's Python runtime ships `snapshot_restore_py` (also on PyPI as
snapshot-restore-py): functions register callables with it, and the runtime calls the
before-snapshot ones (last registered first) before it snapshots an initialized
environment, and the after-restore ones (in registration order) in each environment
restored from that snapshot. Outside Lambda (tests, `scarab serve`, a zip run by hand)
this module takes the registrations instead, with the same functions and the same
(func, args, kwargs) entries, and nothing runs them unless asked (lens.snapstart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

_before_snapshot: list[Hook] = []
_after_restore: list[Hook] = []


def register_before_snapshot(
    func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Callable[..., Any]:
    """Call `func(*args, **kwargs)` before the snapshot is taken (usable as a decorator)."""
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(
    func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Callable[..., Any]:
    """Call `func(*args, **kwargs)` after each restore (usable as a decorator)."""
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot() -> list[Hook]:
    return _before_snapshot


def get_after_restore() -> list[Hook]:
    return _after_restore
