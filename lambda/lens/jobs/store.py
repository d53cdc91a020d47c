"""The jobs table: one item per job, every status change a conditional UpdateItem.

queued -> running (again, for a retried attempt), running -> succeeded | failed,
queued | running -> failed; never back from succeeded or failed. Attribute values that
are documents (request, result, error, timings, last_error) are stored as JSON text, so
no number becomes a Decimal on the way back.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lens.clients import client
from lens.settings import JOBS_KEY_ATTRIBUTE, JOBS_TTL_ATTRIBUTE

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
STATUS = "status"
# An attempt records its deadline (start + the invocation's remaining time: Lambda stops
# it by then). Without a context the deadline is this long (the longest a Lambda runs).
ATTEMPT_LEASE_MS = 15 * 60 * 1000
# Past its deadline plus this margin (clocks of two hosts differ a little) an attempt that
# did not finish is dead, and a later delivery of the event takes the job over.
DEADLINE_MARGIN_MS = 2000


class Refused(Exception):
    """The conditional write did not apply (the job is not in a state that allows it)."""


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Job:
    """A job as read from the table."""

    id: str
    status: str
    request: dict[str, Any]
    created_ms: int
    updated_ms: int
    started_ms: int | None = None
    finished_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    last_error: dict[str, Any] | None = None
    expires_s: int | None = None
    attempt_deadline_ms: int | None = None

    def expired(self, now: int | None = None) -> bool:
        """Past its TTL (DynamoDB deletes such items lazily, days later at worst)."""
        now = now_ms() if now is None else now
        return self.expires_s is not None and self.expires_s * 1000 <= now

    def timings(self) -> dict[str, float]:
        """queued (created to first run), run (first run to done), total, as known."""
        out: dict[str, float] = {}
        if self.started_ms is not None:
            out["queued"] = float(self.started_ms - self.created_ms)
        if self.finished_ms is not None:
            if self.started_ms is not None:
                out["run"] = float(self.finished_ms - self.started_ms)
            out["total"] = float(self.finished_ms - self.created_ms)
        return out

    def view(self) -> dict[str, Any]:
        """GET /jobs/{id}'s answer."""
        out: dict[str, Any] = {"status": self.status}
        if self.result is not None:
            out["result"] = self.result
        if self.error is not None:
            out["error"] = self.error
        out["timings_ms"] = self.timings()
        out["created_at"] = iso(self.created_ms)
        out["updated_at"] = iso(self.updated_ms)
        return out


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return value if isinstance(value, str) else None


def _n(item: dict[str, Any], name: str) -> int | None:
    value = item.get(name, {}).get("N")
    return int(value) if isinstance(value, str) else None


def _doc(item: dict[str, Any], name: str) -> dict[str, Any] | None:
    text = _s(item, name)
    if text is None:
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _job(item: dict[str, Any]) -> Job:
    return Job(
        id=_s(item, JOBS_KEY_ATTRIBUTE) or "",
        status=_s(item, STATUS) or "",
        request=_doc(item, "request") or {},
        created_ms=_n(item, "created_ms") or 0,
        updated_ms=_n(item, "updated_ms") or 0,
        started_ms=_n(item, "started_ms"),
        finished_ms=_n(item, "finished_ms"),
        result=_doc(item, "result"),
        error=_doc(item, "error"),
        attempts=_n(item, "attempts") or 0,
        last_error=_doc(item, "last_error"),
        expires_s=_n(item, JOBS_TTL_ATTRIBUTE),
        attempt_deadline_ms=_n(item, "attempt_deadline_ms"),
    )


def _text(value: object) -> dict[str, str]:
    return {"S": json.dumps(value, separators=(",", ":"))}


def _num(value: int) -> dict[str, str]:
    return {"N": str(value)}


class JobStore:
    """The jobs in `table`; `ttl_s` is how long an item lives after its creation."""

    def __init__(self, table: str, ttl_s: int) -> None:
        self.table = table
        self.ttl_s = ttl_s

    def _key(self, job_id: str) -> dict[str, Any]:
        return {JOBS_KEY_ATTRIBUTE: {"S": job_id}}

    def create(self, job_id: str, request: dict[str, Any]) -> Job:
        """A new queued job (refused if the id exists)."""
        now = now_ms()
        item = {
            **self._key(job_id),
            STATUS: {"S": "queued"},
            "request": _text(request),
            "created_at": {"S": iso(now)},
            "updated_at": {"S": iso(now)},
            "created_ms": _num(now),
            "updated_ms": _num(now),
            "attempts": _num(0),
            JOBS_TTL_ATTRIBUTE: _num(now // 1000 + self.ttl_s),
        }
        client("dynamodb").put_item(
            TableName=self.table,
            Item=item,
            ConditionExpression="attribute_not_exists(#id)",
            ExpressionAttributeNames={"#id": JOBS_KEY_ATTRIBUTE},
        )
        return _job(item)

    def get(self, job_id: str) -> Job | None:
        """The job, or None (unknown or malformed id, not a job item, or past its TTL)."""
        if not ID_PATTERN.match(job_id):
            return None
        got = client("dynamodb").get_item(
            TableName=self.table, Key=self._key(job_id), ConsistentRead=True
        )
        item = got.get("Item")
        if not item or _s(item, STATUS) not in ("queued", "running", "succeeded", "failed"):
            return None
        job = _job(item)
        return None if job.expired() else job

    def _update(
        self,
        job_id: str,
        sets: dict[str, dict[str, str]],
        condition: str,
        values: dict[str, dict[str, str]],
        extra_set: str = "",
        names: dict[str, str] | None = None,
    ) -> Job:
        now = now_ms()
        sets = {**sets, "updated_ms": _num(now), "updated_at": {"S": iso(now)}}
        attribute_names = {f"#a{i}": name for i, name in enumerate(sets)}
        attribute_names.update({"#id": JOBS_KEY_ATTRIBUTE, "#s": STATUS, **(names or {})})
        assignments = [f"#a{i} = :a{i}" for i in range(len(sets))]
        attribute_values = {f":a{i}": value for i, value in enumerate(sets.values())}
        attribute_values.update(values)
        expression = "SET " + ", ".join(assignments + ([extra_set] if extra_set else []))
        # #s appears in every condition; #a names only in the sets.
        try:
            got = client("dynamodb").update_item(
                TableName=self.table,
                Key=self._key(job_id),
                UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(#id) AND ({condition})",
                ExpressionAttributeNames=attribute_names,
                ExpressionAttributeValues=attribute_values,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == (
                "ConditionalCheckFailedException"
            ):
                raise Refused(job_id) from None
            raise
        return _job(got["Attributes"])

    def start(self, job_id: str, deadline_ms: int | None = None, request_id: str = "") -> Job:
        """queued -> running, or a retry of an attempt that failed (note_error) or died
        (past its deadline) while running. `deadline_ms`: when this attempt is stopped
        at the latest (default now + ATTEMPT_LEASE_MS). Refused for a finished or
        expired job, or while another attempt may still be running."""
        now = now_ms()
        deadline = now + ATTEMPT_LEASE_MS if deadline_ms is None else deadline_ms
        return self._update(
            job_id,
            {
                STATUS: {"S": "running"},
                "attempt_ms": _num(now),
                "attempt_deadline_ms": _num(deadline),
                "attempt_request_id": {"S": request_id or "-"},
            },
            "#e > :now_s AND (#s = :queued OR (#s = :running AND "
            "(errored_attempt = attempts OR attempt_deadline_ms < :dead "
            # items started before attempts had deadlines
            "OR (attribute_not_exists(attempt_deadline_ms) AND attempt_ms < :stale))))",
            {
                ":queued": {"S": "queued"},
                ":running": {"S": "running"},
                ":dead": _num(now - DEADLINE_MARGIN_MS),
                ":stale": _num(now - ATTEMPT_LEASE_MS),
                ":now_s": _num(now // 1000),
                ":one": _num(1),
                ":zero": _num(0),
                ":now": _num(now),
            },
            extra_set="attempts = if_not_exists(attempts, :zero) + :one, "
            "started_ms = if_not_exists(started_ms, :now)",
            names={"#e": JOBS_TTL_ATTRIBUTE},
        )

    def succeed(self, job_id: str, result: dict[str, Any]) -> Job:
        """running -> succeeded with `result`."""
        return self._update(
            job_id,
            {STATUS: {"S": "succeeded"}, "result": _text(result), "finished_ms": _num(now_ms())},
            "#s = :running",
            {":running": {"S": "running"}},
        )

    def fail(self, job_id: str, code: str, message: str) -> Job:
        """queued | running -> failed with error {code, message}."""
        return self._update(
            job_id,
            {
                STATUS: {"S": "failed"},
                "error": _text({"code": code, "message": message}),
                "finished_ms": _num(now_ms()),
            },
            "#s IN (:queued, :running)",
            {":queued": {"S": "queued"}, ":running": {"S": "running"}},
        )

    def note_error(self, job_id: str, code: str, message: str) -> Job:
        """Record a retryable failure of the running attempt (the job stays running)."""
        return self._update(
            job_id,
            {"last_error": _text({"code": code, "message": message})},
            "#s = :running",
            {":running": {"S": "running"}},
            extra_set="errored_attempt = attempts",
        )

    def finish_timings(self, job: Job) -> None:
        """Store the job's timings on its item (the `timings` attribute, for readers of
        the table; GET computes them from the times)."""
        client("dynamodb").update_item(
            TableName=self.table,
            Key=self._key(job.id),
            UpdateExpression="SET timings = :t",
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#id": JOBS_KEY_ATTRIBUTE},
            ExpressionAttributeValues={":t": _text(job.timings())},
        )
