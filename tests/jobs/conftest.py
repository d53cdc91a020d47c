"""Fixtures for the jobs' tests: the function's clean settings (tests/function), a stage
in the moto server, and a Lambda Invoke peer that records the self-invocations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from lens import settings

from tests.function.conftest import invoke, lens_env
from tests.function.events import FakeContext
from tests.jobs.stage import Stage, make_stage
from tests.support.lambda_invoke import invoke_endpoint
from tests.support.moto_server import MotoServer

__all__ = ["invoke", "lens_env"]
FUNCTION = "scarab-analyze"  # FakeContext's invoked_function_arn names it


@dataclass
class Peer:
    """What the function's self-invocations reached: `events` (InvocationType Event)."""

    events: list[Any] = field(default_factory=list)
    on_event: Callable[[Any], None] | None = None


@pytest.fixture
def stage(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Stage:
    return make_stage(monkeypatch)


@pytest.fixture
def peer(monkeypatch: pytest.MonkeyPatch, stage: Stage) -> Iterator[Peer]:
    """The Lambda endpoint the function invokes itself through (AWS_ENDPOINT_URL_LAMBDA):
    it records each Event and answers 202; tests run the recorded events themselves."""
    from lens.handler import lambda_handler

    recorded = Peer()

    def hook(event: Any) -> None:
        if recorded.on_event is not None:
            recorded.on_event(event)

    with invoke_endpoint(
        {FUNCTION: lambda_handler}, FakeContext, events=recorded.events, on_event=hook
    ) as (url, _):
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        settings.reset_settings()
        yield recorded
