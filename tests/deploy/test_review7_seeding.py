"""Review 7 (issue 12): a deploy takes a model back from the operator who rolled it back.

The finding fails on today's code; its docstring says what breaks and why it matters.
Deploy runs against the moto server (tests.deploy.conftest's run_deploy), the operator's
promote is the real `scarab models promote` CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from typer.testing import CliRunner

from tests.deploy.conftest import client
from tests.deploy.test_registry_deploy import TABLE, item, packaged

pytestmark = pytest.mark.emulator


def test_a_deploy_never_undoes_an_operators_promote_of_an_older_packaged_version(
    run_deploy, aws, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BREAKS: the packaged model's newer version is bad, so the operator runs `scarab
    models promote tabular 0.9.0` (the previous packaged version; a `rollback` leaves the
    same state). The next `scarab deploy`, for any unrelated change, makes the newer
    packaged version live again: plan_seeds replaces a live version whenever it is an
    older *packaged* one, without looking at whether a person chose it (the aliases
    item's revision has moved past the seed's, the history names the newer version).
    Issue 12: seeding must never overwrite what the registry's owner chose; here a bad
    model silently returns to production on every deploy.
    """
    run_deploy()
    entry = packaged()[1]
    name, newest = entry["name"], entry["version"]
    older = {**item(aws, name, newest), "version": {"S": "0.9.0"}}  # type: ignore[dict-item]
    client("dynamodb", aws).put_item(TableName=TABLE, Item=older)
    monkeypatch.chdir(project)
    promoted = CliRunner().invoke(
        app, ["models", "promote", name, "0.9.0", "--endpoint-url", aws.url]
    )
    assert promoted.exit_code == 0, promoted.output
    assert item(aws, name, "~aliases")["live"] == {"S": "0.9.0"}  # type: ignore[index]
    assert item(aws, name, "~aliases")["history"] == {"L": [{"S": newest}]}  # type: ignore[index]

    result, _ = run_deploy()
    assert item(aws, name, "~aliases")["live"] == {"S": "0.9.0"}, [  # type: ignore[index]
        (s.resource, s.action, s.reason) for s in result.plan
    ]
