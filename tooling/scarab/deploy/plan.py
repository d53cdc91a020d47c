"""Plan steps and the execution context they run in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from scarab.aws import Aws
    from scarab.deploy.models import Desired

Action = Literal["create", "update", "delete"]


@dataclass
class Context:
    """Ids known so far: filled from what the reader found, then by steps as they run."""

    aws: Aws
    desired: Desired
    rest_api_id: str | None = None
    resource_ids: dict[str, str] = field(default_factory=dict)
    usage_plan_id: str | None = None
    key_ids: list[str] = field(default_factory=list)
    image_uri: str | None = None
    function_exists: bool = False


@dataclass(frozen=True)
class Step:
    """One change to one resource, with the reason it is needed."""

    resource: str
    action: Action
    reason: str
    run: Callable[[Context], None] = field(compare=False, repr=False)
    touches_api: bool = False

    def describe(self) -> str:
        return f"{self.action:<6} {self.resource}: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {"resource": self.resource, "action": self.action, "reason": self.reason}
