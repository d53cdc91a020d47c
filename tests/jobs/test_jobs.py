"""Asynchronous jobs through lens.handler.lambda_handler: POST /jobs, the self-invoked
worker event, GET /jobs/{id}, the dead-letter queue's SQS events, and idempotent POSTs,
against the moto server (bucket, table, queue), the Gemini test server and a recording
Lambda Invoke peer."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from lens import settings
from lens.jobs.store import JobStore, Refused, now_ms
from lens.jobs.worker import JobAttemptFailed

from tests.function.events import (
    FakeContext,
    b64,
    http_event,
    jpeg,
    response_headers,
    response_json,
    rest_event,
)
from tests.jobs.conftest import Peer
from tests.jobs.stage import QUEUE, Stage
from tests.support.gemini_server import SAMPLE_ANALYSIS, GeminiServer
from tests.support.lambda_invoke import invoke_endpoint
from tests.support.moto_server import MotoServer

pytestmark = pytest.mark.emulator
Invoke = Callable[..., dict[str, Any]]
KEY = "uploads/" + "0123456789abcdef" * 2


def _post(
    invoke: Invoke,
    path: str,
    body: Any,
    headers: dict[str, str] | None = None,
    api_key_id: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    event = rest_event(
        path=path, body=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    if api_key_id is not None:
        event["requestContext"]["identity"]["apiKeyId"] = api_key_id
    response = invoke(event)
    return response["statusCode"], response_json(response), response_headers(response)


def _get(invoke: Invoke, job_id: str) -> tuple[int, Any]:
    response = invoke(rest_event(method="GET", path=f"/jobs/{job_id}"))
    return response["statusCode"], response_json(response)


def _poll(invoke: Invoke, job_id: str, status: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        code, body = _get(invoke, job_id)
        assert code == 200, body
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def _submit(invoke: Invoke, body: Any, **kwargs: Any) -> str:
    status, answer, _ = _post(invoke, "/jobs", body, **kwargs)
    assert status == 202, answer
    return str(answer["job_id"])


def test_a_job_goes_queued_running_succeeded_with_the_analyze_answer(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    image = jpeg((320, 240))
    status, accepted, _ = _post(invoke, "/jobs", {"image": b64(image), "imageType": "tomb"})
    assert status == 202, accepted
    job_id = accepted["job_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert accepted["status_url"] == f"/jobs/{job_id}"
    assert peer.events == [{"scarab_job": job_id}]
    # The inline image became an upload object; the item holds its key, never the bytes.
    [key] = stage.keys("uploads/")
    request = json.loads(stage.item(job_id)["request"]["S"])
    assert request == {"upload": key, "speed": "fast", "imageType": "tomb"}
    code, queued = _get(invoke, job_id)
    assert code == 200 and queued["status"] == "queued"
    assert queued["timings_ms"] == {} and queued["created_at"].endswith("Z")
    assert "result" not in queued and "error" not in queued

    gemini.reply_delay(1.0)  # long enough to see it running
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(invoke(peer.events[0])))
    worker.start()
    running = _poll(invoke, job_id, "running")
    assert running["status"] == "running" and "queued" in running["timings_ms"]
    worker.join(timeout=30)
    assert outcome == [{"job_id": job_id, "status": "succeeded"}]
    done = _poll(invoke, job_id, "succeeded")
    assert done["status"] == "succeeded"
    assert set(done["timings_ms"]) == {"queued", "run", "total"}
    assert done["timings_ms"]["run"] >= 900
    assert done["updated_at"] >= done["created_at"]
    assert stage.keys("uploads/") == []  # read, then deleted
    # The result is what /analyze answers for the same request.
    code, direct, _ = _post(invoke, "/analyze", {"image": b64(image), "imageType": "tomb"})
    assert code == 200
    result = done["result"]
    assert result["analysis"] == direct["analysis"] == SAMPLE_ANALYSIS
    for name in ("model", "usage", "image"):
        assert result[name] == direct[name]
    assert set(result["timings_ms"]) == {"prepare", "model", "total"}
    assert json.loads(stage.item(job_id)["attempts"]["N"]) == 1


def test_a_job_of_an_upload_reads_it_and_a_bad_upload_fails_the_job(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    stage.s3.put_object(Bucket=stage.bucket, Key=KEY, Body=b"not an image at all")
    job_id = _submit(invoke, {"upload": KEY})
    assert invoke(peer.events[-1]) == {
        "job_id": job_id,
        "status": "failed",
        "code": "unsupported_image",
    }
    assert _get(invoke, job_id)[0] == 200
    body = _get(invoke, job_id)[1]
    assert body["status"] == "failed" and body["error"]["code"] == "unsupported_image"
    assert set(body["timings_ms"]) == {"queued", "run", "total"}
    assert stage.keys() == []
    assert gemini.requests == []


def test_post_jobs_refuses_what_analyze_refuses_before_queuing(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    for body, expected in [
        ({"upload": KEY}, (404, "upload_not_found")),
        ({"upload": "elsewhere/x"}, (404, "upload_not_found")),
        ({"image": b64(jpeg()), "upload": KEY}, (422, "invalid_field")),
        ({"speed": "fast"}, (400, "missing_image")),
        ({"image": b64(b"GIF? no, text")}, (415, "unsupported_image")),
        ({"image": b64(jpeg()), "speed": "slow"}, (422, "invalid_field")),
    ]:
        status, answer, _ = _post(invoke, "/jobs", body)
        assert (status, answer["error"]["code"]) == expected, body
    assert peer.events == []
    assert stage.dynamodb.scan(TableName=stage.table)["Items"] == []


def test_an_upstream_5xx_records_last_error_and_raises_for_lambda_to_retry(
    stage: Stage,
    peer: Peer,
    gemini: GeminiServer,
    monkeypatch: pytest.MonkeyPatch,
    invoke: Invoke,
) -> None:
    monkeypatch.setenv("SCARAB_MAX_ATTEMPTS", "1")
    settings.reset_settings()
    job_id = _submit(invoke, {"image": b64(jpeg())})
    gemini.reply_error(500)
    with pytest.raises(Exception, match="upstream_error"):
        invoke(peer.events[0])
    item = stage.item(job_id)
    assert item["status"]["S"] == "running"
    assert json.loads(item["last_error"]["S"])["code"] == "upstream_error"
    assert len(stage.keys("uploads/")) == 1  # kept for the retry
    # Lambda's retry runs the event again: this time the upstream answers.
    assert invoke(peer.events[0])["status"] == "succeeded"
    assert stage.item(job_id)["attempts"]["N"] == "2"
    assert _get(invoke, job_id)[1]["result"]["analysis"] == SAMPLE_ANALYSIS


def _dead_letter_event(job_ids: list[str], extra_bodies: tuple[str, ...] = ()) -> dict[str, Any]:
    """An SQS event of the DLQ's messages, as the event source mapping delivers them:
    the messages go through the moto server's queue (created as deploy does)."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    for body in [json.dumps({"scarab_job": j}) for j in job_ids] + list(extra_bodies):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages: list[dict[str, Any]] = []
    while len(messages) < len(job_ids) + len(extra_bodies):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages += got.get("Messages", [])
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def test_after_its_retries_the_dead_letter_fails_the_job_with_last_error_s_code(
    stage: Stage,
    peer: Peer,
    gemini: GeminiServer,
    monkeypatch: pytest.MonkeyPatch,
    invoke: Invoke,
) -> None:
    monkeypatch.setenv("SCARAB_MAX_ATTEMPTS", "1")
    settings.reset_settings()
    failing = _submit(invoke, {"image": b64(jpeg())})
    never_ran = _submit(invoke, {"image": b64(jpeg(color=(1, 2, 3)))})
    for _ in range(3):  # the first run and Lambda's two retries
        gemini.reply_error(503)
        with pytest.raises(Exception, match="upstream"):
            invoke(peer.events[0])
    code = json.loads(stage.item(failing)["last_error"]["S"])["code"]
    answer = invoke(_dead_letter_event([failing, never_ran], ("not json", '{"other": 1}')))
    assert answer == {"batchItemFailures": []}
    status, body = _get(invoke, failing)
    assert status == 200 and body["status"] == "failed" and body["error"]["code"] == code
    status, body = _get(invoke, never_ran)
    assert status == 200
    assert body["status"] == "failed" and body["error"]["code"] == "worker_failed"
    assert stage.keys("uploads/") == []  # no retry will read them now
    # A late delivery of the original event finds the job finished: skipped.
    assert invoke(peer.events[0])["status"] == "skipped"
    assert _get(invoke, failing)[1]["status"] == "failed"


def test_dead_letters_the_table_cannot_take_are_reported_for_redelivery(
    stage: Stage, peer: Peer, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    event = _dead_letter_event(["0" * 32])
    monkeypatch.setenv(settings.JOBS_TABLE_ENV, "no-such-table")
    settings.reset_settings()
    answer = invoke(event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}


def test_a_succeeded_job_never_changes_again(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    job_id = _submit(invoke, {"image": b64(jpeg())})
    assert invoke(peer.events[0])["status"] == "succeeded"
    before = _get(invoke, job_id)[1]
    store = JobStore(stage.table, 3600)
    with pytest.raises(Refused):
        store.fail(job_id, "late", "too late")
    with pytest.raises(Refused):
        store.start(job_id)
    with pytest.raises(Refused):
        store.note_error(job_id, "late", "too late")
    # Duplicate deliveries, of the event and of a dead letter, are harmless.
    assert invoke(peer.events[0])["status"] == "skipped"
    assert invoke(_dead_letter_event([job_id])) == {"batchItemFailures": []}
    assert _get(invoke, job_id)[1] == before
    assert len(gemini.requests) == 1


def test_a_duplicate_delivery_during_a_live_attempt_raises_and_does_not_run_it_twice(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    """While an attempt is within its deadline, a second delivery cannot tell it from a
    dead one: it raises (Lambda delivers it again later) rather than answer success,
    and does not run the analysis; once the job is done a delivery is skipped."""
    job_id = _submit(invoke, {"image": b64(jpeg())})
    gemini.reply_delay(1.0)
    first = threading.Thread(target=invoke, args=(peer.events[0],))
    first.start()
    _poll(invoke, job_id, "running")
    with pytest.raises(JobAttemptFailed, match="an attempt is running"):
        invoke(peer.events[0])
    first.join(timeout=30)
    assert _poll(invoke, job_id, "succeeded")["status"] == "succeeded"
    assert invoke(peer.events[0])["status"] == "skipped"  # Lambda's retry of the duplicate
    assert len(gemini.requests) == 1
    assert stage.item(job_id)["attempts"]["N"] == "1"


def test_each_attempt_records_its_deadline_from_the_context(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    job_id = _submit(invoke, {"image": b64(jpeg())})
    context = FakeContext(remaining_ms=90_000.0)
    before = int(time.time() * 1000)
    assert invoke(peer.events[0], context)["status"] == "succeeded"
    item = stage.item(job_id)
    deadline = int(item["attempt_deadline_ms"]["N"])
    assert before + 85_000 <= deadline <= int(time.time() * 1000) + 90_000
    assert item["attempt_request_id"]["S"] == context.aws_request_id


def test_a_retry_after_a_crashed_attempt_past_its_deadline_takes_the_job_over(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    """Attempt 1 died (killed, out of memory, timed out) after start() and before it
    could note an error: the item is running with no errored attempt. Its deadline has
    passed, so Lambda stopped it: the retry runs the job to success."""
    job_id = _submit(invoke, {"image": b64(jpeg())})
    JobStore(stage.table, 3600).start(job_id, deadline_ms=now_ms() - 10_000)  # then died
    assert invoke(peer.events[0])["status"] == "succeeded"  # Lambda's retry
    assert _get(invoke, job_id)[1]["status"] == "succeeded"
    assert stage.item(job_id)["attempts"]["N"] == "2"
    assert len(gemini.requests) == 1


def test_a_retry_within_a_crashed_attempt_s_deadline_raises_and_the_dead_letter_fails_it(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    """Attempt 1 died within its deadline: a retry cannot know it is dead, so it raises
    (never a success that would end Lambda's retries with the job running); after the
    retries the dead letter fails the running job with worker_failed."""
    job_id = _submit(invoke, {"image": b64(jpeg())})
    JobStore(stage.table, 3600).start(job_id, deadline_ms=now_ms() + 600_000)  # then died
    for _retry in range(2):
        with pytest.raises(JobAttemptFailed):
            invoke(peer.events[0])
    assert _get(invoke, job_id)[1]["status"] == "running"
    assert invoke(_dead_letter_event([job_id])) == {"batchItemFailures": []}
    status, body = _get(invoke, job_id)
    assert (status, body["status"], body["error"]["code"]) == (200, "failed", "worker_failed")
    assert stage.keys("uploads/") == []  # no retry will read the upload now
    assert len(gemini.requests) == 0
    # A late delivery of the event changes nothing.
    assert invoke(peer.events[0])["status"] == "skipped"


def test_a_job_past_its_ttl_is_404_and_a_late_event_does_not_run_it(
    stage: Stage, peer: Peer, gemini: GeminiServer, invoke: Invoke
) -> None:
    """DynamoDB deletes expired items lazily (days later at worst): an item past its
    `expiration` is gone for the API and the worker."""
    job_id = _submit(invoke, {"image": b64(jpeg())})
    stage.dynamodb.update_item(
        TableName=stage.table,
        Key={"id": {"S": job_id}},
        UpdateExpression="SET expiration = :e",
        ExpressionAttributeValues={":e": {"N": str(int(time.time()) - 1)}},
    )
    status, body = _get(invoke, job_id)
    assert (status, body["error"]["code"]) == (404, "job_not_found")
    assert invoke(peer.events[0])["status"] == "unknown"
    with pytest.raises(Refused):  # nor can anything start it
        JobStore(stage.table, 3600).start(job_id)
    assert stage.item(job_id)["status"]["S"] == "queued"
    assert len(gemini.requests) == 0


def test_an_idempotency_key_returns_the_same_job_and_another_body_is_409(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    body = {"image": b64(jpeg()), "speed": "fast"}
    headers = {"Idempotency-Key": "order-42"}
    first = _submit(invoke, body, headers=headers)
    # The same request again, also spelled differently (the default speed omitted).
    assert _submit(invoke, body, headers=headers) == first
    assert _submit(invoke, {"image": body["image"]}, headers=headers) == first
    assert peer.events == [{"scarab_job": first}]  # started once
    status, answer, _ = _post(invoke, "/jobs", {**body, "speed": "regular"}, headers=headers)
    assert (status, answer["error"]["code"]) == (409, "idempotency_conflict")
    # Keys are per caller: another API key's same key is its own job.
    other = _submit(invoke, body, headers=headers, api_key_id="key-2")
    assert other != first
    assert _submit(invoke, body, headers=headers, api_key_id="key-2") == other
    # Without the header every POST is a new job.
    assert _submit(invoke, body) not in (first, other)
    assert len(peer.events) == 3


@pytest.mark.parametrize("key", ["", " ", "\t ", "x" * 256, "tab\there", "new\nline"])
def test_a_malformed_idempotency_key_is_400(
    stage: Stage, peer: Peer, invoke: Invoke, key: str
) -> None:
    status, answer, _ = _post(invoke, "/jobs", {"image": b64(jpeg())}, {"Idempotency-Key": key})
    assert (status, answer["error"]["code"]) == (400, "invalid_idempotency_key")
    assert peer.events == []


def test_spaces_around_an_idempotency_key_are_not_part_of_it(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    body = {"image": b64(jpeg())}
    first = _submit(invoke, body, headers={"Idempotency-Key": "order-7"})
    assert _submit(invoke, body, headers={"Idempotency-Key": "  order-7 "}) == first
    assert len(peer.events) == 1


def test_a_retry_while_the_first_is_in_progress_is_409_with_retry_after(
    stage: Stage, peer: Peer, invoke: Invoke
) -> None:
    body = {"image": b64(jpeg())}
    headers = {"Idempotency-Key": "k-1"}
    during: list[tuple[int, Any, dict[str, str]]] = []
    # While the first POST dispatches its job, the client retries.
    peer.on_event = lambda event: during.append(_post(invoke, "/jobs", body, headers))
    first = _submit(invoke, body, headers=headers)
    [(status, answer, answer_headers)] = during
    assert (status, answer["error"]["code"]) == (409, "idempotency_in_progress")
    assert answer_headers["retry-after"] == "1"
    peer.on_event = None
    assert _submit(invoke, body, headers=headers) == first


def test_unknown_and_malformed_job_ids_are_404(stage: Stage, peer: Peer, invoke: Invoke) -> None:
    _submit(invoke, {"image": b64(jpeg())}, headers={"Idempotency-Key": "a"})
    # Powertools' idempotency record shares the table: it is not a job.
    [record] = [
        i["id"]["S"]
        for i in stage.dynamodb.scan(TableName=stage.table)["Items"]
        if "#" in i["id"]["S"]
    ]
    for job_id in ["0" * 32, "xyz", "A" * 32, record.replace("#", "%23")]:
        status, body = _get(invoke, job_id)
        assert (status, body["error"]["code"]) == (404, "job_not_found"), job_id


def test_a_failed_dispatch_is_503_and_the_job_is_failed(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    # A Lambda endpoint that does not know the function (ResourceNotFoundException).
    with invoke_endpoint({}, FakeContext) as (url, _):
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        status, answer, _ = _post(
            invoke, "/jobs", {"image": b64(jpeg())}, {"Idempotency-Key": "d-1"}
        )
    assert (status, answer["error"]["code"]) == (503, "dispatch_failed")
    [job] = [
        i for i in stage.dynamodb.scan(TableName=stage.table)["Items"] if "#" not in i["id"]["S"]
    ]
    assert job["status"]["S"] == "failed"
    assert json.loads(job["error"]["S"])["code"] == "dispatch_failed"
    assert stage.keys("uploads/") == []  # the inline image's copy is gone too
    # The idempotency record was released: a retry with the same key makes a new job.
    with invoke_endpoint({"scarab-analyze": lambda e, c: None}, FakeContext) as (url, _):
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        retried = _submit(invoke, {"image": b64(jpeg())}, headers={"Idempotency-Key": "d-1"})
    assert retried != job["id"]["S"]


def test_without_a_table_jobs_are_503(
    aws: MotoServer, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    status, answer, _ = _post(invoke, "/jobs", {"image": b64(jpeg())})
    assert (status, answer["error"]["code"]) == (503, "jobs_unavailable")
    assert _get(invoke, "0" * 32)[0] == 503


def test_the_openapi_document_lists_uploads_and_jobs(invoke: Invoke) -> None:
    doc = response_json(invoke(rest_event(method="GET", path="/openapi.json")))
    assert {"202", "409", "503"} <= set(doc["paths"]["/jobs"]["post"]["responses"])
    assert "get" in doc["paths"]["/jobs/{id}"]
    assert {"201", "413", "415"} <= set(doc["paths"]["/uploads"]["post"]["responses"])
    assert "upload" in doc["components"]["schemas"]["AnalyzeRequest"]["properties"]


def test_end_to_end_the_invoke_peer_runs_the_job_as_lambda_would(
    stage: Stage, gemini: GeminiServer, monkeypatch: pytest.MonkeyPatch, invoke: Invoke
) -> None:
    """HTTP API (2.0) events, and the Event invocation run by the peer in its own thread."""
    from lens.handler import lambda_handler

    with invoke_endpoint({"scarab-analyze": lambda_handler}, FakeContext, run_events=True) as (
        url,
        _,
    ):
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", url)
        event = http_event(
            path="/jobs",
            body={"image": b64(jpeg()), "speed": "super-fast"},
            headers={"content-type": "application/json", "idempotency-key": "h-1"},
        )
        response = invoke(event)
        assert response["statusCode"] == 202, response
        job_id = response_json(response)["job_id"]
        get = http_event(method="GET", path=f"/jobs/{job_id}")
        deadline = time.monotonic() + 30
        while (body := response_json(invoke(get)))["status"] != "succeeded":
            assert body["status"] in ("queued", "running") and time.monotonic() < deadline, body
            time.sleep(0.05)
    assert body["result"]["model"] == settings.DEFAULT_MODELS["super-fast"]
    assert response_json(invoke(event))["job_id"] == job_id  # the same key: the same job
