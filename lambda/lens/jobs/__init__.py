"""Asynchronous jobs: POST /jobs, GET /jobs/{id}, and the work itself.

A job is an item in the stage's jobs table (SCARAB_JOBS_TABLE, partition key `id`, TTL
attribute `expiration`; Powertools' idempotency records share it under other ids). POST
/jobs stores the request (an inline image first becomes an upload object: an item never
holds image bytes), then invokes this same function asynchronously with the event
{"scarab_job": id} (lens.jobs.worker). Lambda retries a failed asynchronous invocation
and then sends the event to the function's dead-letter queue, whose SQS events the
worker also consumes: the job ends `failed`, never stuck in `running`.

Why a self-invoke rather than an SQS work queue: no extra polling resource, Lambda's own
retries and DLQ, and the work runs under the function's timeout, not API Gateway's 29 s.
"""

from __future__ import annotations

from lens.errors import ApiError
from lens.settings import get_settings

JOB_EVENT_KEY = "scarab_job"


def unavailable() -> ApiError:
    return ApiError(503, "jobs_unavailable", "Jobs are not configured for this stage (no table).")


def not_found() -> ApiError:
    return ApiError(404, "job_not_found", "There is no such job; it may have expired.")


def table() -> str:
    """The jobs table; 503 jobs_unavailable when the stage has none."""
    name = get_settings().jobs_table
    if not name:
        raise unavailable()
    return name
