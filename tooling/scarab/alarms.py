"""`scarab alarms`: the stage's CloudWatch alarms, each with its state, why, and threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.aws import aws_errors, call
from scarab.config import ScarabConfig
from scarab.stage import open_stage


def _threshold(alarm: dict[str, Any]) -> str:
    """'Errors Sum >= 1' or 'Duration p99 > 24000': what the alarm compares."""
    ops = {
        "GreaterThanOrEqualToThreshold": ">=",
        "GreaterThanThreshold": ">",
        "LessThanThreshold": "<",
        "LessThanOrEqualToThreshold": "<=",
    }
    stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic") or ""
    op = ops.get(str(alarm.get("ComparisonOperator")), str(alarm.get("ComparisonOperator")))
    return f"{alarm.get('MetricName')} {stat} {op} {alarm.get('Threshold'):g}"


def alarms(
    config: ScarabConfig, *, project_dir: Path, endpoint_url: str | None = None
) -> dict[str, Any]:
    """The stage's alarms (named `<app>-<stage>-`, tagged for the stage), sorted by name."""
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url)
    cw = st.aws.client("cloudwatch")
    out: list[dict[str, Any]] = []
    with aws_errors():
        pages = cw.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=st.names.alarm_prefix, AlarmTypes=["MetricAlarm"]
        )
        for page in pages:
            for alarm in page.get("MetricAlarms", []):
                got = call(cw.list_tags_for_resource, ResourceARN=alarm["AlarmArn"])
                tags = {t["Key"]: t["Value"] for t in got.get("Tags") or []}
                if not st.names.tagged_by(tags):
                    continue  # stage `<stage>-x`'s, under the same prefix
                out.append(
                    {
                        "name": alarm["AlarmName"],
                        "state": alarm.get("StateValue"),
                        "reason": alarm.get("StateReason"),
                        "since": str(alarm.get("StateUpdatedTimestamp") or ""),
                        "metric": alarm.get("MetricName"),
                        "statistic": alarm.get("ExtendedStatistic") or alarm.get("Statistic"),
                        "comparison": alarm.get("ComparisonOperator"),
                        "threshold": alarm.get("Threshold"),
                        "condition": _threshold(alarm),
                        "dimensions": {
                            d["Name"]: d["Value"] for d in alarm.get("Dimensions") or []
                        },
                    }
                )
    out.sort(key=lambda a: a["name"])
    return {"stage": st.names.stage, "region": st.aws.region, "alarms": out}
