"""The stage's alarms, their SNS topic and its budget, as data (computed from scarab.toml).

Nothing here talks to AWS: deploy/planner_alarms.py compares these with what the reader
found, deploy/export.py renders them, and `stage_alarm_names` tells the canary bake which
alarms to watch.

Function alarms watch the function's `live` alias (dimensions FunctionName and
Resource=<function>:live: the traffic callers get, so a canary's errors count). API alarms
watch the REST API's stage (ApiName + Stage). Every alarm treats missing data as not
breaching: an idle stage is healthy, not INSUFFICIENT_DATA.

The API's 5XX rate is API Gateway's own `5XXError` metric with the Average statistic:
each request records 0 or 1, so the Average over a period *is* the share of requests
that failed (AWS documents it so). Metric math (5XXError Sum / Count) would say the same
with two queries and no Statistic a local evaluator could read; the Average is one metric,
one statistic, and needs no guard against a period with no requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scarab.config import ScarabConfig
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.naming import Names

if TYPE_CHECKING:
    from scarab.deploy.models import Desired

MISSING_DATA = "notBreaching"
LAMBDA_NAMESPACE = "AWS/Lambda"
API_NAMESPACE = "AWS/ApiGateway"
# Budget notifications: one of each per threshold.
NOTIFICATION_TYPES = ("ACTUAL", "FORECASTED")


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch metric alarm. Exactly one of `statistic` (Sum, Average, ...) and
    `extended_statistic` (p99) is set: CloudWatch refuses both at once."""

    name: str
    description: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    threshold: float
    comparison: str
    period: int
    evaluation_periods: int
    statistic: str | None = None
    extended_statistic: str | None = None

    def __post_init__(self) -> None:
        if (self.statistic is None) == (self.extended_statistic is None):
            raise ValueError(f"alarm {self.name}: set exactly one of statistic, extended_statistic")

    def definition(self, topic_arn: str) -> dict[str, Any]:
        """PutMetricAlarm's parameters (without Tags), which are also what DescribeAlarms
        answers: the planner compares these keys to find drift."""
        params: dict[str, Any] = {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "ActionsEnabled": True,
            "AlarmActions": [topic_arn],
            "OKActions": [topic_arn],
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
            "Period": self.period,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.evaluation_periods,
            "Threshold": float(self.threshold),
            "ComparisonOperator": self.comparison,
            "TreatMissingData": MISSING_DATA,
        }
        if self.statistic is not None:
            params["Statistic"] = self.statistic
        else:
            params["ExtendedStatistic"] = self.extended_statistic
        return params


@dataclass(frozen=True)
class TopicSpec:
    """The SNS topic every alarm notifies, and the address subscribed to it (if any)."""

    name: str
    arn: str
    email: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class StageAlarms:
    """What [alarms] asks for: the alarms and their topic."""

    alarms: tuple[AlarmSpec, ...]
    topic: TopicSpec
    tags: dict[str, str]


@dataclass(frozen=True)
class BudgetSpec:
    """The stage's monthly cost budget: its limit, the thresholds (percent) that notify
    `email` for actual and forecasted spend, and the tags its cost filter matches."""

    name: str
    limit_usd: float
    email: str
    thresholds: tuple[int, ...]
    tags: dict[str, str]

    @property
    def filter_expression(self) -> dict[str, Any]:
        """Costs of resources carrying both stage tags. FilterExpression, not CostFilters:
        CostFilters' `TagKeyValue: ["user:scarab:app$<app>", "user:scarab:stage$<stage>"]`
        ORs its values (every stage of the app, plus every app's stage of that name), and
        AWS deprecated CostFilters for FilterExpression in 2025."""
        return tag_filter(self.tags)

    @property
    def limit(self) -> dict[str, str]:
        """Budgets' Spend: a decimal string (AWS answers it with its own precision)."""
        return {"Amount": _amount(self.limit_usd), "Unit": "USD"}

    def budget(self) -> dict[str, Any]:
        """CreateBudget's Budget."""
        return {
            "BudgetName": self.name,
            "BudgetType": "COST",
            "TimeUnit": "MONTHLY",
            "BudgetLimit": self.limit,
            "FilterExpression": self.filter_expression,
        }

    def notifications(self) -> list[dict[str, Any]]:
        """Each threshold's actual and forecasted notification (Notification's shape)."""
        return [
            {
                "NotificationType": kind,
                "ComparisonOperator": "GREATER_THAN",
                "Threshold": float(threshold),
                "ThresholdType": "PERCENTAGE",
            }
            for threshold in self.thresholds
            for kind in NOTIFICATION_TYPES
        ]

    def subscribers(self) -> list[dict[str, str]]:
        return [{"SubscriptionType": "EMAIL", "Address": self.email}]


def tag_filter(tags: dict[str, str]) -> dict[str, Any]:
    """A Budgets FilterExpression matching costs of resources that carry every one of
    `tags` (the user-defined cost-allocation tags, activated in the Billing console)."""
    return {
        "And": [
            {"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}}
            for key, value in tags.items()
        ]
    }


def _amount(usd: float) -> str:
    """12.5 -> "12.50": a decimal string to the cent, never an exponent."""
    return f"{usd:.2f}"


def amounts_equal(a: str | float, b: str | float) -> bool:
    """Two Budgets amounts ("100", "100.0", 100) mean the same, to the cent."""
    return round(float(a), 2) == round(float(b), 2)


def function_alarms(
    names: Names, key: str, function: str, config: ScarabConfig
) -> tuple[AlarmSpec, ...]:
    """Errors, throttles and duration p99 of function `function` (catalog name `key`)
    through its live alias."""
    a = config.alarms
    dims = (("FunctionName", function), ("Resource", f"{function}:{LIVE_ALIAS}"))
    base = f"{names.base}-{key}"
    common: dict[str, Any] = {
        "namespace": LAMBDA_NAMESPACE,
        "dimensions": dims,
        "period": a.period_seconds,
        "evaluation_periods": a.evaluation_periods,
    }
    duration = config.duration_alarm_ms(key)
    return (
        AlarmSpec(
            name=f"{base}-errors",
            description=f"{function}:{LIVE_ALIAS} had {a.errors} or more errors in"
            f" {a.period_seconds} s (scarab)",
            metric="Errors",
            threshold=a.errors,
            comparison="GreaterThanOrEqualToThreshold",
            statistic="Sum",
            **common,
        ),
        AlarmSpec(
            name=f"{base}-throttles",
            description=f"{function}:{LIVE_ALIAS} was throttled {a.throttles} or more times in"
            f" {a.period_seconds} s (scarab)",
            metric="Throttles",
            threshold=a.throttles,
            comparison="GreaterThanOrEqualToThreshold",
            statistic="Sum",
            **common,
        ),
        AlarmSpec(
            name=f"{base}-duration-p99",
            description=f"{function}:{LIVE_ALIAS}'s p99 duration is over {duration} ms (scarab)",
            metric="Duration",
            threshold=duration,
            comparison="GreaterThanThreshold",
            extended_statistic="p99",
            **common,
        ),
    )


def api_alarms(names: Names, config: ScarabConfig) -> tuple[AlarmSpec, ...]:
    """The API stage's 5XX rate (the 5XXError Average, see the module docstring) and its
    p99 latency."""
    a = config.alarms
    common: dict[str, Any] = {
        "namespace": API_NAMESPACE,
        "dimensions": (("ApiName", names.rest_api), ("Stage", names.stage)),
        "period": a.period_seconds,
        "evaluation_periods": a.evaluation_periods,
    }
    latency = config.latency_alarm_ms()
    return (
        AlarmSpec(
            name=f"{names.base}-api-5xx",
            description=f"over {a.api_5xx_rate:g}% of {names.rest_api}/{names.stage}'s"
            " requests answered 5XX (scarab)",
            metric="5XXError",
            threshold=a.api_5xx_rate / 100,
            comparison="GreaterThanThreshold",
            statistic="Average",
            **common,
        ),
        AlarmSpec(
            name=f"{names.base}-api-latency-p99",
            description=f"{names.rest_api}/{names.stage}'s p99 latency is over {latency} ms"
            " (scarab)",
            metric="Latency",
            threshold=latency,
            comparison="GreaterThanThreshold",
            extended_statistic="p99",
            **common,
        ),
    )


def stage_alarms(
    config: ScarabConfig,
    functions: tuple[Any, ...],
    account_id: str,
    region: str,
    partition: str,
) -> StageAlarms | None:
    """What [alarms] asks for, for `functions` (deploy.models.FunctionSpec: each has its
    catalog `key` and its `name`); None when [alarms] enabled = false."""
    if not config.alarms.enabled:
        return None
    names = Names(config.app, config.stage)
    alarms: list[AlarmSpec] = []
    for fn in functions:
        alarms += function_alarms(names, fn.key, fn.name, config)
    alarms += api_alarms(names, config)
    topic = names.alarm_topic
    return StageAlarms(
        alarms=tuple(alarms),
        topic=TopicSpec(
            name=topic,
            arn=f"arn:{partition}:sns:{region}:{account_id}:{topic}",
            email=config.alarms.email,
            tags=names.tags,
        ),
        tags=names.tags,
    )


def budget_spec(config: ScarabConfig) -> BudgetSpec | None:
    """The budget [budget] asks for (None: there is no [budget] table)."""
    email = config.budget_email
    if config.budget is None or email is None:
        return None
    names = Names(config.app, config.stage)
    return BudgetSpec(
        name=names.budget,
        limit_usd=config.budget.monthly_usd,
        email=email,
        thresholds=tuple(config.budget.thresholds),
        tags=names.tags,
    )


def stage_alarm_names(desired: Desired) -> list[str]:
    """The names of the stage's alarms (what the canary bake watches), sorted; empty when
    [alarms] is off."""
    alarms = desired.alarms
    return sorted(a.name for a in alarms.alarms) if alarms else []
