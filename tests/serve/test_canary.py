"""`scarab deploy --canary` watched by `scarab serve`'s own alarm evaluation (issue 14).

One serve for the module; the stage's alarms are the ones deploy makes from [alarms].
While traffic runs against the models function (GET /models), the real CLI deploys a
canary to serve's emulator (`--local`): a healthy version (a configuration change) is
promoted after its bake; a version whose handler raises (a code change in the project's
own source) drives `<stage>-models-errors` to ALARM through serve's local metrics, and
the bake rolls it back by itself, exit 1. Order matters: the healthy canary first, so no
error of the broken one is still inside an alarm's period.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.serve.support import DEFAULT_TOML, emulator_url, http, make_project
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, scarab_cli, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

MODELS = "scarab-dev-models"
ERRORS_ALARM = "scarab-dev-models-errors"
API_5XX_ALARM = "scarab-dev-api-5xx"
TOML = (
    DEFAULT_TOML
    + """
[alarms]
period_seconds = 60
errors = 1
"""
)
BROKEN = """

def lambda_handler(event, context):  # the canary's broken handler (tests/serve/test_canary.py)
    raise RuntimeError("this version is broken")
"""


class Traffic:
    """GET /models in a loop on two threads while a canary deploys and bakes."""

    def __init__(self, serve: ServeProcess) -> None:
        self.url = f"{serve.api_url}/models"
        self.headers = {"x-api-key": serve.api_key or ""}
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(2)]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.statuses[http(self.url, headers=self.headers, timeout=60).status] += 1

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=90)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    project = make_project(tmp_path_factory.mktemp("canary") / "p", TOML, web=False)
    env = {"GOOGLE_API_KEY": None, "AWS_ENDPOINT_URL": None}
    with start_serve(project, env=env, timeout=240) as serve:
        yield serve


def _client(project: Path, service: str) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    return session.client(service, endpoint_url=emulator_url(project))


def _lambda(project: Path) -> Any:
    return _client(project, "lambda")


def _alarm_state(project: Path, name: str) -> str:
    (alarm,) = _client(project, "cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarm["StateValue"])


def _live(project: Path) -> tuple[str, dict[str, float]]:
    alias = _lambda(project).get_alias(FunctionName=MODELS, Name="live")
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    return str(alias["FunctionVersion"]), dict(weights)


def _canary(serve: ServeProcess, bake: int) -> tuple[int, dict[str, Any], str]:
    result = scarab_cli(
        serve.project_dir, "deploy", "--local", "--canary", "50", "--bake", str(bake), "--json",
        timeout=600,
    )  # fmt: skip
    doc = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    return result.returncode, doc, result.stderr


def test_a_healthy_canary_is_promoted_after_its_bake(served: ServeProcess) -> None:
    project = served.project_dir
    before, _ = _live(project)
    toml = project / "scarab.toml"
    toml.write_text(toml.read_text() + "\n[functions.models]\nmemory = 1024\n")
    with Traffic(served) as traffic:
        wait_until(lambda: traffic.statuses[200] >= 5, timeout=120, what="traffic before")
        code, doc, stderr = _canary(served, bake=8)
    assert code == 0, stderr
    (release,) = [r for r in doc["releases"] if r["key"] == "models"]
    assert release["previous"] == before and release["canary_weight"] == 0.5
    assert doc["canary"]["promoted"] is True
    assert ERRORS_ALARM in doc["canary"]["watched"]
    assert _live(project) == (release["published"], {})
    assert set(traffic.statuses) == {200}, traffic.statuses


def test_a_canary_whose_handler_fails_rolls_itself_back(served: ServeProcess) -> None:
    project = served.project_dir
    before, _ = _live(project)
    entry = project / "lambda" / "lens" / "entry" / "models.py"
    entry.write_text(entry.read_text() + BROKEN)
    with Traffic(served) as traffic:
        wait_until(lambda: traffic.statuses[200] >= 5, timeout=120, what="traffic before")
        code, doc, stderr = _canary(served, bake=120)
    assert code == 1, stderr
    assert doc["canary"]["promoted"] is False
    # Both see the broken version: its errors (on models:live) and the API's 5XX rate; the
    # bake names the first by name of those in ALARM.
    fired = doc["canary"]["alarm"]["name"]
    assert fired in {ERRORS_ALARM, API_5XX_ALARM}
    assert "The canary was rolled back" in stderr and fired in stderr
    assert _alarm_state(project, ERRORS_ALARM) == "ALARM"
    # Back on the version before the canary, with no weights: every request answers again.
    assert _live(project) == (before, {})
    assert traffic.statuses[502] > 0, traffic.statuses  # the broken version did answer some
    key = {"x-api-key": served.api_key or ""}

    def all_healthy() -> bool:
        return all(http(f"{served.api_url}/models", headers=key).status == 200 for _ in range(20))

    wait_until(all_healthy, timeout=30, what="20 answers in a row from the version before")
