"""`Cache-Control: max-age=0` on a request (HTTP's other way of saying "no cached
answer, please": what a browser's reload sends) bypasses the cache like no-cache; a
positive max-age, or a malformed one, does not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.cache.test_function import _analyze, cached  # noqa: F401 (fixture)
from tests.function.events import jpeg
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer

# `cached`: the cache on, in-process, with the test's clock.
pytestmark = [pytest.mark.emulator, pytest.mark.usefixtures("cached")]
Invoke = Callable[..., dict[str, Any]]


def test_max_age_zero_bypasses_the_cache_and_refreshes_it(
    gemini: GeminiServer, invoke: Invoke
) -> None:
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"
    gemini.reply_json({**SAMPLE_ANALYSIS, "interesting_detail": "A fresher answer."})
    status, body, headers = _analyze(invoke, jpeg(), {"Cache-Control": "Max-Age = 0"})
    assert status == 200 and headers["x-cache"] == "bypass"
    assert len(gemini.requests) == 2
    assert body["analysis"]["interesting_detail"] == "A fresher answer."
    # The fresh answer replaced the cached one, as with no-cache.
    status, body, headers = _analyze(invoke, jpeg())
    assert headers["x-cache"] == "hit" and len(gemini.requests) == 2
    assert body["analysis"]["interesting_detail"] == "A fresher answer."


@pytest.mark.parametrize("value", ["max-age=60", "max-age=zero", "max-age"])
def test_other_max_ages_read_the_cache(value: str, gemini: GeminiServer, invoke: Invoke) -> None:
    assert _analyze(invoke, jpeg())[2]["x-cache"] == "miss"
    status, _, headers = _analyze(invoke, jpeg(), {"Cache-Control": value})
    assert status == 200 and headers["x-cache"] == "hit"
    assert len(gemini.requests) == 1
