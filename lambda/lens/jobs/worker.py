"""The work of a job: the {"scarab_job": id} event, and the dead-letter queue's SQS events.

`run` is what the asynchronous self-invoke delivers: the job goes running, the analysis
runs (lens.routes.run_analysis, as for POST /analyze), and the job ends succeeded, or
failed for a definitive 4xx. A 5xx (the upstream failing, a timeout) records last_error
and raises, so Lambda retries the event. Each attempt records its deadline (Lambda stops
it by then); a delivery that finds an attempt running past its deadline (the worker
died) takes the job over, one that finds an attempt within it raises too (Lambda tries
again later). A finished job is skipped. After the retries Lambda sends the event to the
dead-letter queue, and `consume_dead_letters` marks those jobs failed with last_error's
code (or worker_failed), running or not.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from lens import invocation, jobs, uploads
from lens.errors import ApiError
from lens.jobs.store import ID_PATTERN, Job, JobStore, Refused, now_ms
from lens.observability import logger
from lens.settings import get_settings


class JobAttemptFailed(Exception):
    """A retryable failure: raised so that Lambda runs the event again."""


def is_job_event(event: object) -> bool:
    return isinstance(event, dict) and isinstance(event.get(jobs.JOB_EVENT_KEY), str)


def is_sqs_event(event: object) -> bool:
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        return False
    records = event["Records"]
    return bool(records) and all(
        isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records
    )


def _store() -> JobStore:
    return JobStore(jobs.table(), get_settings().jobs_ttl_s)


def run(event: dict[str, Any], context: Any, request_id: str) -> dict[str, Any]:
    """Run the job `event` names; raises JobAttemptFailed for a retryable failure."""
    from lens.routes import run_analysis
    from lens.schema import AnalyzeRequest

    job_id = str(event[jobs.JOB_EVENT_KEY])
    store = _store()
    if not ID_PATTERN.match(job_id) or store.get(job_id) is None:
        logger.warning("job event for an unknown job", extra={"job_id": job_id[:64]})
        return {"job_id": job_id[:64], "status": "unknown"}
    getter = getattr(context, "get_remaining_time_in_millis", None)
    remaining = (lambda: float(getter())) if callable(getter) else invocation._no_deadline
    # Lambda stops this invocation by then: past it, a later delivery may take over.
    deadline = now_ms() + int(getter()) if callable(getter) else None
    try:
        job = store.start(job_id, deadline, request_id)
    except Refused:
        return _refused(store, job_id)
    current = invocation.Invocation(request_id=request_id, remaining_ms=remaining)
    token = invocation.begin(current)
    try:
        body = AnalyzeRequest.model_validate(job.request)
        result = run_analysis(body)
    except ApiError as error:
        if error.status < 500:
            _finish(store, store.fail, job_id, error.code, error.message)
            return {"job_id": job_id, "status": "failed", "code": error.code}
        _note(store, job_id, error.code, error.message)
        logger.warning("job attempt failed", extra={"job_id": job_id, "code": error.code})
        raise JobAttemptFailed(f"job {job_id}: {error.code}") from None
    except Exception as exc:
        logger.exception("job attempt failed unexpectedly", extra={"job_id": job_id})
        _note(store, job_id, "internal_error", "Something went wrong on our side.")
        raise JobAttemptFailed(f"job {job_id}: internal_error") from exc
    finally:
        invocation.end(token)
    try:
        done = store.succeed(job_id, result.model_dump(mode="json"))
    except Refused:  # failed meanwhile (the dead-letter consumer, after the retries)
        logger.warning("job finished elsewhere before this attempt", extra={"job_id": job_id})
        return {"job_id": job_id, "status": "skipped"}
    _store_timings(store, done)
    return {"job_id": job_id, "status": "succeeded"}


def _refused(store: JobStore, job_id: str) -> dict[str, Any]:
    """start() refused: a finished (or expired) job is skipped, a success for Lambda; a
    job whose attempt may still be running (within its deadline) raises, so Lambda
    delivers the event again later, and after the retries to the dead-letter queue,
    whose consumer fails the job. Returning success here would leave a job whose
    worker died `running` for good."""
    job = store.get(job_id)
    if job is None or job.status in ("succeeded", "failed"):
        logger.info("job event skipped", extra={"job_id": job_id})
        return {"job_id": job_id, "status": "skipped"}
    logger.warning(
        "job event while an attempt may still run; retry later",
        extra={"job_id": job_id, "attempt_deadline_ms": job.attempt_deadline_ms},
    )
    raise JobAttemptFailed(f"job {job_id}: an attempt is running")


def _note(store: JobStore, job_id: str, code: str, message: str) -> None:
    with contextlib.suppress(Refused):  # finished meanwhile (the DLQ consumer failed it)
        store.note_error(job_id, code, message)


def _finish(store: JobStore, how: Any, job_id: str, code: str, message: str) -> Job | None:
    try:
        done: Job = how(job_id, code, message)
    except Refused:
        return None
    _store_timings(store, done)
    return done


def _store_timings(store: JobStore, job: Job) -> None:
    try:
        store.finish_timings(job)
    except Exception as exc:  # GET computes them from the item's times anyway
        logger.warning("job timings not stored", extra={"error": type(exc).__name__})


def consume_dead_letters(event: dict[str, Any]) -> dict[str, Any]:
    """Mark the jobs of the DLQ's records failed (last_error's code, else worker_failed);
    the records that could not be handled are reported for SQS to redeliver."""
    failures: list[dict[str, str]] = []
    store = _store()
    for record in event["Records"]:
        message_id = str(record.get("messageId", ""))
        try:
            payload = json.loads(record.get("body") or "")
            job_id = payload.get(jobs.JOB_EVENT_KEY) if isinstance(payload, dict) else None
        except ValueError:
            job_id = None
        if not isinstance(job_id, str) or not ID_PATTERN.match(job_id):
            # Nothing a redelivery would change: dropped, logged.
            logger.warning("dead letter without a job id", extra={"message_id": message_id})
            continue
        try:
            _dead(store, job_id)
        except Exception:
            logger.exception("dead letter not handled", extra={"job_id": job_id})
            failures.append({"itemIdentifier": message_id})
    return {"batchItemFailures": failures}


def _dead(store: JobStore, job_id: str) -> None:
    job = store.get(job_id)
    if job is None or job.status in ("succeeded", "failed"):
        return
    last = job.last_error or {}
    code = str(last.get("code") or "worker_failed")
    message = str(last.get("message") or "The job failed after its retries.")
    done = _finish(store, store.fail, job_id, code, message)
    key = job.request.get("upload")
    if done is not None and isinstance(key, str) and uploads.KEY_PATTERN.match(key):
        uploads.delete_upload(key)  # no retry will read it now
    logger.info("job failed after its retries", extra={"job_id": job_id, "code": code})
