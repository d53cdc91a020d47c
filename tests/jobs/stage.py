"""A stage's uploads bucket and jobs table in the moto server, created with boto3 as
`scarab deploy` creates them, and the function's environment pointing at them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from lens import settings

BUCKET = "scarab-test-uploads-123456789012-us-east-1"
TABLE = "scarab-test-jobs"
QUEUE = "scarab-test-jobs-dlq"


@dataclass
class Stage:
    s3: Any
    dynamodb: Any
    bucket: str = BUCKET
    table: str = TABLE

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def item(self, job_id: str) -> dict[str, Any]:
        got = self.dynamodb.get_item(TableName=self.table, Key={"id": {"S": job_id}})
        item: dict[str, Any] = got.get("Item", {})
        return item


def make_stage(monkeypatch: pytest.MonkeyPatch, *, table: bool = True) -> Stage:
    """The bucket (and the table, unless told not to) with the function's env set."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    dynamodb = boto3.client("dynamodb")
    monkeypatch.setenv(settings.UPLOADS_BUCKET_ENV, BUCKET)
    if table:
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": settings.JOBS_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": settings.JOBS_KEY_ATTRIBUTE, "AttributeType": "S"}
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={
                "Enabled": True,
                "AttributeName": settings.JOBS_TTL_ATTRIBUTE,
            },
        )
        monkeypatch.setenv(settings.JOBS_TABLE_ENV, TABLE)
    settings.reset_settings()
    return Stage(s3=s3, dynamodb=dynamodb)
