"""Lambda's Invoke through a running `scarab serve` at /_lambda: RequestResponse and
Event run in serve's workers; a failing Event is retried per the function's
EventInvokeConfig, then goes to its DeadLetterConfig queue: to the function an event
source mapping from that queue runs, or into the queue in the emulator.

The functions here are a small probe (its source below) deployed into the emulator
next to the stage; their side effects are files in a directory the test reads."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.serve.support import emulator_url, make_project, state
from tests.support.ports import wait_until
from tests.support.serve_process import ServeProcess, start_serve

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

PROBE = """
import json, os, time
import boto3

def _note(name, data):
    path = os.path.join(os.environ["ASYNC_PROBE_DIR"], name)
    with open(path, "a") as f:
        f.write(json.dumps(data) + "\\n")

def handler(event, context):
    if "Records" in event:
        failures = []
        for record in event["Records"]:
            body = json.loads(record["body"])
            _note(body["id"] + ".dlq", record)
            if body.get("reject"):
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}
    _note(event["id"] + ".attempts", {"pid": os.getpid(), "t": time.time()})
    mode = event.get("mode")
    if mode == "fail":
        raise RuntimeError("fails on purpose")
    if mode == "self":
        # What the jobs do: the function invokes itself asynchronously.
        boto3.client("lambda").invoke(
            FunctionName=context.invoked_function_arn,
            InvocationType="Event",
            Payload=json.dumps({"id": event["id"] + "-child"}),
        )
    return {
        "id": event["id"],
        "pid": os.getpid(),
        "arn": context.invoked_function_arn,
        "env": {k: os.environ.get(k) for k in (
            "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_LAMBDA", "ASYNC_PROBE_VAR")},
    }
"""


@dataclass
class Stage:
    serve: ServeProcess
    notes: Path
    role: str
    zip_bytes: bytes

    @property
    def emulator(self) -> str:
        return emulator_url(self.serve.project_dir)

    def session(self) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )

    def moto(self, service: str) -> Any:
        return self.session().client(service, endpoint_url=self.emulator)

    def lam(self) -> Any:
        """Lambda the way a function's client sees it: serve's /_lambda."""
        config = Config(retries={"max_attempts": 1}, read_timeout=60)
        return self.session().client(
            "lambda", endpoint_url=f"{self.serve.url}/_lambda", config=config
        )

    def create(self, name: str, **extra: Any) -> str:
        fn = self.moto("lambda").create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=self.role,
            Handler="async_probe.handler",
            Code={"ZipFile": self.zip_bytes},
            Timeout=10,
            Environment={
                "Variables": {"ASYNC_PROBE_DIR": str(self.notes), "ASYNC_PROBE_VAR": name}
            },
            **extra,
        )
        return str(fn["FunctionArn"])

    def queue(self, name: str) -> tuple[str, str]:
        sqs = self.moto("sqs")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(url), str(arn["Attributes"]["QueueArn"])

    def has(self, name: str) -> bool:
        return bool(self.notes_of(name))

    def notes_of(self, name: str) -> list[dict[str, Any]]:
        path = self.notes / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def received(sqs: Any, url: str, into: list[dict[str, Any]]) -> bool:
    """Receive from the queue in the emulator into `into`; whether anything came."""
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"]).get("Messages")
    into.extend(got or [])
    return bool(into)


def probe_zip(project: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("async_probe.py", date_time=(2020, 1, 1, 0, 0, 0)), PROBE)
    data = buf.getvalue()
    target = project / ".scarab" / "build" / "zip" / f"{hashlib.sha256(data).hexdigest()}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return data


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    project = make_project(tmp_path_factory.mktemp("async-invoke"), web=False)
    notes = tmp_path_factory.mktemp("async-notes")
    env = {
        "GOOGLE_API_KEY": None,
        "GEMINI_API_KEY": None,
        "AWS_ENDPOINT_URL": None,
        # Lambda waits minutes between retries; a fifth of a second here.
        "SCARAB_SERVE_ASYNC_RETRY_DELAY_S": "0.2",
    }
    proc = start_serve(project, env=env)
    try:
        role = state(project)["functions"]["models"]["role_arn"]
        yield Stage(proc, notes, role, probe_zip(project))
    finally:
        proc.stop()
        print(proc.output())


def test_request_response_runs_in_serve_with_its_endpoints(stage: Stage) -> None:
    arn = stage.create("async-rr")
    for name in ("async-rr", arn, "123456789012:function:async-rr"):
        got = stage.lam().invoke(FunctionName=name, Payload=json.dumps({"id": "rr"}))
        assert got["StatusCode"] == 200 and "FunctionError" not in got
        assert got["ExecutedVersion"] == "$LATEST"
        answer = json.loads(got["Payload"].read())
        assert answer["id"] == "rr" and answer["arn"] == arn
        # The function's own clients talk to serve: presigned URLs and invocations too.
        assert answer["env"] == {
            "AWS_ENDPOINT_URL_S3": f"{stage.serve.url}/_s3",
            "AWS_ENDPOINT_URL_LAMBDA": f"{stage.serve.url}/_lambda",
            "ASYNC_PROBE_VAR": "async-rr",
        }
    failed = stage.lam().invoke(
        FunctionName="async-rr", Payload=json.dumps({"id": "rr-fail", "mode": "fail"})
    )
    assert failed["StatusCode"] == 200 and failed["FunctionError"] == "Unhandled"
    error = json.loads(failed["Payload"].read())
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "fails on purpose"
    dry = stage.lam().invoke(FunctionName="async-rr", InvocationType="DryRun")
    assert dry["StatusCode"] == 204


def test_unknown_function_and_bad_payload_are_lambdas_errors(stage: Stage) -> None:
    with pytest.raises(ClientError) as missing:
        stage.lam().invoke(FunctionName="no-such-function", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    stage.create("async-bad")
    with pytest.raises(ClientError) as bad:
        stage.lam().invoke(FunctionName="async-bad", Payload=b"{not json")
    assert bad.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_event_answers_202_and_runs_in_the_same_workers(stage: Stage) -> None:
    stage.create("async-event")
    warm = json.loads(
        stage.lam()
        .invoke(FunctionName="async-event", Payload=b'{"id": "ev-warm"}')["Payload"]
        .read()
    )
    got = stage.lam().invoke(
        FunctionName="async-event", InvocationType="Event", Payload=json.dumps({"id": "ev"})
    )
    assert got["StatusCode"] == 202
    wait_until(lambda: stage.has("ev.attempts"), timeout=30, what="the event to run")
    # The warm worker that answered the synchronous call ran it (one container is idle).
    assert stage.notes_of("ev.attempts")[0]["pid"] == warm["pid"]


def test_a_function_invokes_itself_asynchronously(stage: Stage) -> None:
    arn = stage.create("async-self")
    got = stage.lam().invoke(FunctionName=arn, Payload=json.dumps({"id": "self", "mode": "self"}))
    assert "FunctionError" not in got, got["Payload"].read()
    wait_until(lambda: stage.has("self-child.attempts"), timeout=30, what="the self-invocation")


def test_a_failing_event_is_retried_then_delivered_through_the_dlq_mapping(stage: Stage) -> None:
    url, queue_arn = stage.queue("async-jobs-dlq")
    stage.create("async-worker", DeadLetterConfig={"TargetArn": queue_arn})
    lam = stage.moto("lambda")
    lam.put_function_event_invoke_config(FunctionName="async-worker", MaximumRetryAttempts=1)
    assert lam.get_function_configuration(FunctionName="async-worker")["DeadLetterConfig"] == {
        "TargetArn": queue_arn
    }
    # The mapping on an alias, as a stage would route it.
    stage.create("async-dlq-reader")
    version = lam.publish_version(FunctionName="async-dlq-reader")["Version"]
    alias = lam.create_alias(FunctionName="async-dlq-reader", Name="live", FunctionVersion=version)
    mapping = lam.create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=alias["AliasArn"],
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    assert mapping["FunctionArn"] == alias["AliasArn"]

    payload = {"id": "job-1", "mode": "fail"}
    got = stage.lam().invoke(
        FunctionName="async-worker", InvocationType="Event", Payload=json.dumps(payload)
    )
    assert got["StatusCode"] == 202
    wait_until(lambda: stage.has("job-1.dlq"), timeout=60, what="the dead-letter delivery")
    assert len(stage.notes_of("job-1.attempts")) == 2  # the first run and one retry
    (record,) = stage.notes_of("job-1.dlq")
    assert json.loads(record["body"]) == payload
    assert record["eventSourceARN"] == queue_arn and record["eventSource"] == "aws:sqs"
    assert record["messageId"] and record["receiptHandle"]
    assert record["messageAttributes"]["ErrorMessage"]["stringValue"] == "fails on purpose"
    # Delivered by the mapping: nothing is left in the queue.
    sqs = stage.moto("sqs")
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)

    # A record the reader reports as failed stays in the queue, as with Lambda's mapping.
    rejected = {"id": "job-2", "mode": "fail", "reject": True}
    stage.lam().invoke(
        FunctionName="async-worker", InvocationType="Event", Payload=json.dumps(rejected)
    )
    wait_until(lambda: stage.has("job-2.dlq"), timeout=60, what="the second delivery")
    messages: list[dict[str, Any]] = []
    wait_until(
        lambda: received(sqs, url, messages),
        timeout=30,
        what="the rejected record back in the queue",
    )
    assert json.loads(messages[0]["Body"]) == rejected


def test_without_a_mapping_the_event_lands_in_the_queue_after_the_default_retries(
    stage: Stage,
) -> None:
    url, queue_arn = stage.queue("async-plain-dlq")
    stage.create("async-lonely", DeadLetterConfig={"TargetArn": queue_arn})
    payload = {"id": "job-3", "mode": "fail"}
    stage.lam().invoke(
        FunctionName="async-lonely", InvocationType="Event", Payload=json.dumps(payload)
    )
    sqs = stage.moto("sqs")
    messages: list[dict[str, Any]] = []
    wait_until(
        lambda: received(sqs, url, messages),
        timeout=60,
        what="the event in the dead-letter queue",
    )
    assert len(stage.notes_of("job-3.attempts")) == 3  # Lambda's default: two retries
    assert json.loads(messages[0]["Body"]) == payload
    attributes = messages[0]["MessageAttributes"]
    assert attributes["ErrorMessage"]["StringValue"] == "fails on purpose"
    assert attributes["RequestID"]["StringValue"]
