"""The deletions destroy waits out (a cluster still draining its service, a group whose
network interfaces are being released) are retried by the executor for exactly the codes
the instruction names."""

from __future__ import annotations

import pytest
import scarab.aws
from scarab.aws import Aws
from scarab.deploy.executor import Executor
from scarab.deploy.instructions import ApiCall, Step
from scarab.errors import ScarabError

from tests.deploy.conftest import Recorder, client, counted_session
from tests.support.moto_server import MotoServer


def _create_cluster(retry: frozenset[str]) -> Step:
    create = ApiCall("ecs", "CreateCluster", {"clusterName": "c"}, retry_codes=retry)
    return Step("ecs.cluster c", "create", "test", (create,))


def test_a_named_code_is_retried_and_any_other_is_not(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scarab.aws, "RETRY_BASE_DELAY", 0.001)
    recorder = Recorder(fail_on="CreateCluster")  # fails the first CreateCluster only
    run = Aws("us-east-1", endpoint_url=aws.url, session=counted_session(recorder))
    Executor(run).execute([_create_cluster(frozenset({"InjectedFailure"}))])
    assert recorder.calls == ["ecs.CreateCluster", "ecs.CreateCluster"]
    assert client("ecs", aws).describe_clusters(clusters=["c"])["clusters"][0]["status"] == "ACTIVE"

    recorder = Recorder(fail_on="CreateCluster")
    run = Aws("us-east-1", endpoint_url=aws.url, session=counted_session(recorder))
    with pytest.raises(ScarabError, match="InjectedFailure"):
        Executor(run).execute([_create_cluster(frozenset({"ClusterContainsServicesException"}))])
    assert recorder.calls == ["ecs.CreateCluster"]
