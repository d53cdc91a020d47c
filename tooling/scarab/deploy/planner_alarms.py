"""The alarms part of the plan: the SNS topic and its email subscription, the CloudWatch
alarms, and the AWS Budgets budget. Pure, like deploy/planner.py (which calls it last).

PutMetricAlarm is idempotent, but an alarm is put only when it is missing or its
definition differs from scarab's (a re-run with nothing changed makes no call). An alarm
named for the stage that the config no longer wants goes only when tagged for the stage.
The topic goes when [alarms] is off. The budget is replaced when any of its settings
changed (moto, like every emulator we test against, has no UpdateBudget; AWS recomputes
the month's spend from the bill either way).
"""

from __future__ import annotations

from typing import Any

from scarab.deploy.alarms import AlarmSpec, BudgetSpec, StageAlarms, amounts_equal
from scarab.deploy.instructions import ApiCall, Step
from scarab.deploy.models import Desired
from scarab.deploy.planner_api import deleting
from scarab.deploy.reader import ObservedAlarms, stage_budget_filter
from scarab.errors import ScarabError
from scarab.naming import Names

# DeleteAlarms takes up to 100 names a call.
_DELETE_BATCH = 100
# A subscription SNS has not confirmed yet has no ARN to unsubscribe (it expires by itself).
PENDING = "PendingConfirmation"


def _tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def alarm_params(alarm: AlarmSpec, topic_arn: str, tags: dict[str, str]) -> dict[str, Any]:
    """PutMetricAlarm's parameters for `alarm` (CloudWatch applies Tags on creation only)."""
    return {**alarm.definition(topic_arn), "Tags": _tag_list(tags)}


def _normalized(definition: dict[str, Any]) -> dict[str, Any]:
    """An alarm's definition as compared for drift: lists as sets, numbers as floats,
    and both statistic keys present (None where unset), so an alarm that has a Statistic
    where scarab wants an ExtendedStatistic differs."""
    out = {k: v for k, v in definition.items() if k != "Tags"}
    out["Dimensions"] = sorted((d["Name"], d["Value"]) for d in definition.get("Dimensions", []))
    for key in ("AlarmActions", "OKActions"):
        out[key] = sorted(definition.get(key) or [])
    out["Threshold"] = float(definition.get("Threshold") or 0)
    for key in ("Statistic", "ExtendedStatistic"):
        out[key] = definition.get(key)
    return out


def alarm_drift(alarm: AlarmSpec, topic_arn: str, live: dict[str, Any]) -> list[str]:
    """What of `live` (a DescribeAlarms MetricAlarm) differs from `alarm`, key by key."""
    want = _normalized(alarm.definition(topic_arn))
    have = _normalized({k: live.get(k) for k in want})
    return [k for k in want if want[k] != have[k]]


def plan_topic(names: Names, alarms: StageAlarms | None, live: ObservedAlarms) -> list[Step]:
    """Create (or tag) the topic and subscribe the email; unsubscribe other addresses."""
    if alarms is None:
        return []
    topic = alarms.topic
    res = f"sns.topic {topic.name}"
    steps: list[Step] = []
    if not live.topic_exists:
        create = ApiCall("sns", "CreateTopic", {"Name": topic.name, "Tags": _tag_list(topic.tags)})
        steps.append(Step(res, "create", "missing (the alarms notify it)", (create,)))
    elif any(live.topic_tags.get(k) != v for k, v in topic.tags.items()):
        tag = ApiCall(
            "sns", "TagResource", {"ResourceArn": topic.arn, "Tags": _tag_list(topic.tags)}
        )
        steps.append(Step(f"{res} tags", "update", "tags differ", (tag,)))
    emails = [s for s in live.subscriptions if s.get("Protocol") == "email"]
    if topic.email is not None and not any(s.get("Endpoint") == topic.email for s in emails):
        subscribe = ApiCall(
            "sns",
            "Subscribe",
            {"TopicArn": topic.arn, "Protocol": "email", "Endpoint": topic.email},
        )
        why = "missing ([alarms] email; SNS mails a confirmation link first)"
        steps.append(Step(f"sns.subscription {topic.email}", "create", why, (subscribe,)))
    for sub in emails:
        if sub.get("Endpoint") != topic.email and sub.get("SubscriptionArn") != PENDING:
            unsubscribe = ApiCall(
                "sns", "Unsubscribe", {"SubscriptionArn": sub["SubscriptionArn"]}, missing_ok=True
            )
            why = deleting("not [alarms] email any more")
            steps.append(
                Step(f"sns.subscription {sub.get('Endpoint')}", "delete", why, (unsubscribe,))
            )
    return steps


def plan_metric_alarms(
    names: Names, alarms: StageAlarms | None, live: ObservedAlarms
) -> list[Step]:
    """Put each alarm that is missing or differs; delete the stage's alarms (tagged for
    it) that the config no longer has."""
    steps: list[Step] = []
    wanted: set[str] = set()
    for alarm in alarms.alarms if alarms else ():
        assert alarms is not None
        wanted.add(alarm.name)
        res = f"cloudwatch.alarm {alarm.name}"
        put = ApiCall(
            "cloudwatch", "PutMetricAlarm", alarm_params(alarm, alarms.topic.arn, alarms.tags)
        )
        have = live.alarms.get(alarm.name)
        if have is None:
            steps.append(Step(res, "create", "missing", (put,)))
            continue
        drift = alarm_drift(alarm, alarms.topic.arn, have)
        if drift:
            steps.append(Step(res, "update", "differs: " + ", ".join(drift), (put,)))
        tags = live.alarm_tags.get(alarm.name, {})
        if any(tags.get(k) != v for k, v in alarms.tags.items()):
            tag = ApiCall(
                "cloudwatch",
                "TagResource",
                {"ResourceARN": have["AlarmArn"], "Tags": _tag_list(alarms.tags)},
            )
            steps.append(Step(f"{res} tags", "update", "tags differ", (tag,)))
    doomed = sorted(
        name
        for name in live.alarms
        if name not in wanted and names.tagged_by(live.alarm_tags.get(name, {}))
    )
    why = deleting("[alarms] is off" if alarms is None else "the config no longer has it")
    for start in range(0, len(doomed), _DELETE_BATCH):
        batch = doomed[start : start + _DELETE_BATCH]
        delete = ApiCall("cloudwatch", "DeleteAlarms", {"AlarmNames": batch}, missing_ok=True)
        steps.append(Step(f"cloudwatch.alarms {', '.join(batch)}", "delete", why, (delete,)))
    return steps


def plan_topic_removal(
    names: Names, alarms: StageAlarms | None, live: ObservedAlarms
) -> list[Step]:
    """Delete the topic (and with it its subscriptions) once [alarms] is off."""
    if alarms is not None or not live.topic_exists or not names.tagged_by(live.topic_tags):
        return []
    if live.topic_arn is None:
        return []
    delete = ApiCall("sns", "DeleteTopic", {"TopicArn": live.topic_arn}, missing_ok=True)
    why = deleting("[alarms] is off: nothing notifies it")
    return [Step(f"sns.topic {names.alarm_topic}", "delete", why, (delete,))]


def budget_drift(spec: BudgetSpec, live: ObservedAlarms) -> list[str]:
    """What of the live budget differs from `spec` (limit, period, notifications and,
    where the service lets them be read, their addresses)."""
    have = live.budget or {}
    out: list[str] = []
    limit = have.get("BudgetLimit") or {}
    if not amounts_equal(limit.get("Amount") or 0, spec.limit_usd) or limit.get("Unit") != "USD":
        out.append(f"limit {limit.get('Amount')} {limit.get('Unit')} -> {spec.limit_usd:g} USD")
    if have.get("TimeUnit") != "MONTHLY" or have.get("BudgetType") != "COST":
        out.append("not a monthly cost budget")

    def key(n: dict[str, Any]) -> tuple[str, str, float, str]:
        return (
            str(n.get("NotificationType")),
            str(n.get("ComparisonOperator")),
            float(n.get("Threshold") or 0),
            str(n.get("ThresholdType", "PERCENTAGE")),
        )

    if sorted(map(key, live.budget_notifications)) != sorted(map(key, spec.notifications())):
        out.append("thresholds " + ", ".join(f"{t}%" for t in spec.thresholds))
    if live.budget_emails is not None and any(
        emails != [spec.email] for emails in live.budget_emails.values()
    ):
        out.append(f"notifies {spec.email}")
    return out


def create_budget(spec: BudgetSpec, account_id: str) -> ApiCall:
    return ApiCall(
        "budgets",
        "CreateBudget",
        {
            "AccountId": account_id,
            "Budget": spec.budget(),
            "NotificationsWithSubscribers": [
                {"Notification": n, "Subscribers": spec.subscribers()} for n in spec.notifications()
            ],
            "ResourceTags": _tag_list(spec.tags),
        },
    )


def plan_budget(d: Desired, live: ObservedAlarms) -> list[Step]:
    spec, names = d.budget, d.names
    res = f"budgets.budget {names.budget}"
    have = live.budget
    # A budget of the stage's name is scarab's when it filters on the stage's tags.
    if have is not None and have.get("FilterExpression") != stage_budget_filter(names):
        if spec is None:
            return []  # someone else's budget of that name: left alone
        raise ScarabError(
            f"A budget named {names.budget} exists that scarab did not make (it does not"
            f" filter on the {names.base} tags). Rename or delete it (AWS Billing console,"
            " Budgets), or remove [budget] from scarab.toml."
        )
    delete = ApiCall(
        "budgets", "DeleteBudget", {"AccountId": d.account_id, "BudgetName": names.budget},
        missing_ok=True,
    )  # fmt: skip
    if spec is None:
        if have is None:
            return []
        return [Step(res, "delete", deleting("scarab.toml has no [budget]"), (delete,))]
    create = create_budget(spec, d.account_id)
    if have is None:
        why = f"missing ({spec.limit_usd:g} USD a month, notifying {spec.email})"
        return [Step(res, "create", why, (create,))]
    drift = budget_drift(spec, live)
    if drift:
        return [Step(res, "update", "replaced: " + "; ".join(drift), (delete, create))]
    return []


def plan_alarms(d: Desired, obs: ObservedAlarms | None) -> list[Step]:
    """Topic, subscription, alarms, then (when off) the topic's removal, then the budget."""
    live = obs or ObservedAlarms()
    return [
        *plan_topic(d.names, d.alarms, live),
        *plan_metric_alarms(d.names, d.alarms, live),
        *plan_topic_removal(d.names, d.alarms, live),
        *plan_budget(d, live),
    ]
