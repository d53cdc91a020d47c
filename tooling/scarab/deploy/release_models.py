"""What a deploy did to each function's `live` alias, as a value (DeployResult.releases).

The release commands (rollback, split, the canary bake) read these to know which
version a deploy published and which one `live` served before it.
"""

from __future__ import annotations

from dataclasses import dataclass

# The alias API Gateway integrations and Function URLs target (contract with serve,
# export and the release commands).
LIVE_ALIAS = "live"


@dataclass(frozen=True)
class Release:
    """One function's move of `live`: from `previous` (None: the alias did not exist)
    to `published` (the version this deploy moved it to: newly published, or an existing
    one with the same code and configuration). `canary_weight`: the share of traffic
    (0..1) `published` gets through the alias's weighted routing while `previous` keeps
    the rest; None when `published` serves all of it."""

    function: str  # the Lambda function's name
    key: str  # its catalog name (analyze, models)
    previous: str | None
    published: str | None
    canary_weight: float | None = None
