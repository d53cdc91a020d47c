"""Review 12 (adversarial): a canary percent near 0 or 100 must stay a share strictly
inside (0, 1) on the alias. The planner rounded the weight to six places, so
`--canary 99.9999999` stored a weight of 1.0 (which Lambda refuses: the deploy would
fail half-way on AWS, and the emulator kept it) and `--canary 1e-9` stored 0.0 (a canary
no request can reach, then promoted by a quiet bake)."""

from __future__ import annotations

import pytest
from scarab.deploy.weights import weight

from tests.deploy.conftest import MODELS
from tests.deploy.release_support import alias

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize("percent", [99.9999999, 1e-9])
def test_a_canary_near_0_or_100_keeps_a_weight_inside_0_1(run_deploy, aws, percent) -> None:
    run_deploy()
    result, _ = run_deploy({"functions.models.memory": 1024}, canary_percent=percent)
    version, weights = alias(aws, MODELS)
    assert version == "1" and list(weights) == ["2"]
    assert 0.0 < weights["2"] < 1.0, weights
    assert weights["2"] == pytest.approx(percent / 100, rel=1e-9)
    [release] = result.releases
    assert release.canary_weight == weights["2"]


def test_a_percent_whose_share_underflows_is_refused() -> None:
    from scarab.errors import ConfigError

    with pytest.raises(ConfigError, match="too close to 0 or 100"):
        weight(5e-324)
