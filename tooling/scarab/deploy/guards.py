"""Pre-flight checks that read AWS and refuse with advice before anything is changed,
and the warnings a deploy prints after it (read-only calls only).

- the state record is this app's and account's, in this region (state.py);
- AWS's name limits hold in this region (the artifact bucket's name includes it);
- the stage's IAM role (global) is not used by the stage's function in another region:
  a deploy here would re-scope the role's inline policies to this region and cut that
  function off from its logs and its Gemini key (a lost record plus the wrong region);
- afterwards: the Gemini key the function now reads exists, and the role or function
  grants nothing scarab did not (an extra inline policy, an attached managed policy, an
  invoke permission for someone else). Those are the user's: reported, never deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scarab.aws import Aws, call, error_code, explain
from scarab.config import ScarabConfig, name_length_problem, prediction_db_secret_name
from scarab.deploy.lock import lock_parameter, unlock
from scarab.deploy.planner import carried_environment, foreign_grants
from scarab.deploy.planner_url import public_url_statement
from scarab.deploy.reader import Observed, ObservedFunction, ObservedRole, role_users
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.deploy.state import StageState
from scarab.errors import ConfigError, ScarabError
from scarab.naming import TAG_APP, TAG_STAGE, FunctionNames, Names

_GONE = {
    "NotFoundException",
    "ResourceNotFoundException",
    "NoSuchEntity",
    "NoSuchEntityException",
    "ParameterNotFound",
}


def check_record(aws: Aws, names: Names, state: StageState) -> None:
    """The record is for this app, account and region (StateError / ScarabError if not)."""
    state.check_region(aws)
    state.check_owner(names.app, aws.account_id if state.account_id else "")


def preflight(
    aws: Aws, names: Names, state: StageState, functions: tuple[FunctionNames, ...]
) -> None:
    """Everything `scarab deploy` checks before it plans (see the module docstring), for
    each of the stage's `functions`."""
    check_record(aws, names, state)
    problem = name_length_problem(names.app, names.stage, aws.region)
    if problem:
        raise ConfigError(f"scarab.toml: {problem}.")
    for fn in functions:
        check_owner_tags(aws, names, fn)
        _check_role_region(aws, names, fn)


def check_vpcs(aws: Aws, config: ScarabConfig) -> None:
    """Each [functions.<name>.vpc] names subnets and security groups that exist in this
    account and region, all in one VPC: Lambda would refuse them half-way through the
    deploy (after the roles changed), so a wrong id is a config error before anything."""
    from scarab.functions import FUNCTIONS

    if all(config.function_vpc(fn.name) is None for fn in FUNCTIONS):
        return
    ec2 = aws.client("ec2")

    def subnets(ids: list[str]) -> list[dict[str, Any]]:
        return list(call(lambda: ec2.describe_subnets(SubnetIds=ids))["Subnets"])

    def groups(ids: list[str]) -> list[dict[str, Any]]:
        return list(call(lambda: ec2.describe_security_groups(GroupIds=ids))["SecurityGroups"])

    for fn in FUNCTIONS:
        vpc = config.function_vpc(fn.name)
        if vpc is None:
            continue
        where = f"scarab.toml: [functions.{fn.name}.vpc]"
        found = _described(aws, subnets, vpc.subnet_ids, "SubnetId", f"{where}: subnet_ids")
        found += _described(
            aws, groups, vpc.security_group_ids, "GroupId", f"{where}: security_group_ids"
        )
        vpcs = {str(item.get("VpcId")) for item in found}
        if len(vpcs) > 1:
            raise ConfigError(
                f"{where}: the subnets and security groups must all be in one VPC; they are"
                f" in {', '.join(sorted(vpcs))} (Lambda attaches a function to one VPC)."
            )


def _described(
    aws: Aws,
    describe: Callable[[list[str]], list[dict[str, Any]]],
    ids: list[str],
    id_key: str,
    where: str,
) -> list[dict[str, Any]]:
    """EC2's description of each of `ids`; ConfigError naming the ones that do not exist
    (EC2 answers *.NotFound for the whole call when one is missing: asked one by one)."""
    try:
        found = describe(ids)
    except Exception as exc:
        if not error_code(exc).endswith(".NotFound"):
            raise
        found = []
        for one in ids:
            try:
                found += describe([one])
            except Exception as inner:
                if not error_code(inner).endswith(".NotFound"):
                    raise
    missing = sorted(set(ids) - {str(item.get(id_key)) for item in found})
    if missing:
        verb = "does" if len(missing) == 1 else "do"
        raise ConfigError(
            f"{where} names {', '.join(missing)}, which {verb} not exist in {aws.region}"
            " for this account."
        )
    return found


def _check_role_region(aws: Aws, names: Names, fn: FunctionNames) -> None:
    role_arn = _role_used_elsewhere(aws, fn)
    if role_arn is None:
        return
    users = role_users(aws, fn.function, role_arn)
    elsewhere = [u for u in users if _region_of(u) not in ("", aws.region)]
    if elsewhere:
        regions = sorted({_region_of(u) for u in elsewhere})
        raise ScarabError(
            f"Stage {names.stage} is already deployed in {', '.join(regions)}: "
            + "; ".join(elsewhere)
            + f", and its IAM role {fn.role} is global. Deploying in {aws.region} would"
            " re-scope that role to this region and cut the live function off from its logs"
            f" and its Gemini key. Pass --region {regions[0]} (or set region ="
            f' "{regions[0]}" in scarab.toml) to work on that stage, or to move it run'
            f" 'scarab destroy --region {regions[0]}' first and then deploy in {aws.region}."
        )


def check_owner_tags(aws: Aws, names: Names, fn: FunctionNames) -> None:
    """Refuse when the function of this name belongs to another app/stage pair that builds
    the same names ('shop-api'/'dev' and 'shop'/'api-dev' both make 'shop-api-dev'):
    adopting it would re-point its role, permission and usage plan at this stage."""
    lam = aws.client("lambda")
    try:
        got = call(lam.get_function, FunctionName=fn.function)
    except Exception as exc:
        if error_code(exc) in _GONE:
            return
        raise
    tags = got.get("Tags") or {}
    owner = (tags.get(TAG_APP), tags.get(TAG_STAGE))
    if None in owner or owner == (names.app, names.stage):
        return  # untagged (adopted by name, as recovery from a lost record does) or ours
    raise ScarabError(
        f"The function {fn.function} belongs to app {owner[0]!r}, stage {owner[1]!r}"
        f" (its scarab:app and scarab:stage tags), not to app {names.app!r}, stage"
        f" {names.stage!r}: both build the name {fn.function}. Nothing was changed."
        " Rename this app or stage in scarab.toml so the names differ."
    )


def _role_used_elsewhere(aws: Aws, names: FunctionNames) -> str | None:
    """The role's ARN when it exists and this region's function does not use it (so
    another region's might); None in the common case, answered with two reads instead
    of one per region."""
    try:
        role_arn = str(call(aws.client("iam").get_role, RoleName=names.role)["Role"]["Arn"])
    except Exception as exc:
        if error_code(exc) in _GONE:
            return None
        raise
    try:
        got = call(aws.client("lambda").get_function_configuration, FunctionName=names.function)
    except Exception as exc:
        if error_code(exc) in _GONE:
            return role_arn
        raise
    return None if got.get("Role") == role_arn else role_arn


def _region_of(user: str) -> str:
    """The region of a 'the function F in REGION still uses it' line ('' for others)."""
    if not user.endswith("still uses it"):
        return ""
    return user.rsplit(" in ", 1)[1].split()[0]


def secret_exists(aws: Aws, name: str, backend: str) -> bool:
    """Whether the SSM parameter or Secrets Manager secret `name` exists, asked without
    reading its value (DescribeParameters, DescribeSecret). Raises on other errors."""
    try:
        if backend == "ssm":
            got = call(
                aws.client("ssm").describe_parameters,
                ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}],
            )
            return bool(got.get("Parameters"))
        call(aws.client("secretsmanager").describe_secret, SecretId=name)
        return True
    except Exception as exc:
        if error_code(exc) not in _GONE:
            raise
        return False


def prediction_log(aws: Aws, config: ScarabConfig) -> tuple[bool, str | None]:
    """Whether the stage's prediction log is on ([log] enabled and its database URL
    stored; only the secret's existence is asked, never its value), and what to say
    when [log] enabled finds no URL."""
    if not config.log.enabled:
        return False, None
    name = prediction_db_secret_name(config.app, config.stage)
    backend = config.secrets.backend
    try:
        found = secret_exists(aws, name, backend)
    except Exception as exc:
        return False, (
            f"the prediction log is off: could not check that its database URL {name}"
            f" exists ({explain(exc)})"
        )
    if found:
        return True, None
    store = "SSM parameter" if backend == "ssm" else "Secrets Manager secret"
    return False, (
        f"the prediction log is off: no database URL is stored in the {store} {name}."
        " To turn it on, run 'scarab secrets set prediction-db-url --stdin' (the URL on"
        " standard input, e.g. postgresql://user:password@host/db), then 'scarab deploy';"
        " [log] enabled = false in scarab.toml silences this"
    )


def missing_secret(aws: Aws, config: ScarabConfig) -> str | None:
    """A warning when the Gemini key the function reads does not exist in its store
    (never set, or [secrets] backend switched): /analyze fails until it is set."""
    name, backend = config.secret_name, config.secrets.backend
    try:
        exists = secret_exists(aws, name, backend)
    except Exception as exc:
        return f"could not check that the Gemini key {name} exists ({explain(exc)})"
    if exists:
        return None
    store = "SSM parameter" if backend == "ssm" else "Secrets Manager secret"
    return (
        f"the function reads its Gemini key from the {store} {name}, which does not exist,"
        " so /analyze fails until it does: run 'scarab secrets set gemini-api-key"
        " --from-env VAR' (or --stdin)"
    )


def extra_access(
    names: Names,
    fn: FunctionNames,
    role: ObservedRole | None,
    function: ObservedFunction | None,
    region: str,
) -> list[dict[str, Any]]:
    """Grants on the stage's role and function that scarab did not make. Each: kind, name,
    and the command that removes it (the user decides: scarab never deletes them)."""
    out: list[dict[str, Any]] = []
    ours = {
        names.logs_policy, names.inline_policy, names.registry_policy, names.log_db_policy,
        names.cache_policy, names.vpc_policy, names.uploads_policy, names.jobs_policy,
    }  # fmt: skip
    if role is not None:
        for policy in sorted(set(role.inline) - ours):
            out.append({
                "kind": "inline role policy",
                "name": policy,
                "remove": f"aws iam delete-role-policy --role-name {fn.role}"
                f" --policy-name {policy}",
            })  # fmt: skip
        for arn in sorted(role.attached):
            out.append({
                "kind": "attached role policy",
                "name": arn.rsplit("/", 1)[-1],
                "arn": arn,
                "remove": f"aws iam detach-role-policy --role-name {fn.role}"
                f" --policy-arn {arn}",
            })  # fmt: skip
    if function is not None:
        # The function's own policy and its `live` alias's (what the API and URL invoke).
        for qualifier, stmt in [
            *((None, s) for s in function.policy),
            *((LIVE_ALIAS, s) for s in function.alias_policy),
        ]:
            sid = str(stmt.get("Sid", ""))
            if sid in (names.permission_sid, names.alias_permission_sid):
                continue
            if public_url_statement(stmt):
                continue
            principal = stmt.get("Principal")
            public = principal == "*" or (
                isinstance(principal, dict) and "*" in {str(v) for v in principal.values()}
            )
            alias = f" --qualifier {qualifier}" if qualifier else ""
            out.append({
                "kind": "public invoke permission" if public else "invoke permission",
                "name": sid if qualifier is None else f"{sid} ({LIVE_ALIAS} alias)",
                "principal": principal,
                "remove": f"aws lambda remove-permission --function-name {fn.function}"
                f"{alias} --statement-id {sid} --region {region}",
            })  # fmt: skip
    return out


def extra_access_warnings(items: list[dict[str, Any]]) -> list[str]:
    """One warning line per grant scarab did not make."""
    return [
        f"the stage has a {i['kind']} scarab did not create: {i['name']}; scarab leaves"
        f" it in place. If it is not intended, remove it: {i['remove']}"
        for i in items
    ]


def deploy_warnings(
    aws: Aws,
    config: ScarabConfig,
    names: Names,
    units: list[tuple[FunctionNames, ObservedRole | None, ObservedFunction | None]],
) -> list[str]:
    """What a deploy says after it is done (stderr and DeployResult.warnings): a missing
    Gemini key, and grants on the stage's functions that scarab did not make."""
    found = missing_secret(aws, config)
    items = [i for fn, r, f in units for i in extra_access(names, fn, r, f, aws.region)]
    return ([found] if found else []) + extra_access_warnings(items) + double_cors(config)


def double_cors(config: ScarabConfig) -> list[str]:
    """A warning per Function URL whose CORS and the function's own CORS headers (it
    echoes an origin in [function] allowed_origins, through ALLOWED_ORIGINS) would both
    answer one origin: the browser sees two Access-Control-Allow-Origin headers and
    rejects the response."""
    out: list[str] = []
    own = set(config.function.allowed_origins)
    for name, override in sorted(config.functions.items()):
        cors = override.url.cors if override.url else None
        if cors is None:
            continue
        theirs = set(cors.allow_origins)
        both = sorted(own & theirs) if "*" not in own | theirs else sorted(own | theirs)
        if both:
            out.append(
                f"the Function URL of {name} has CORS ([functions.{name}.url.cors]) and the"
                " function sends its own CORS headers for [function] allowed_origins, so a"
                f" browser calling from {', '.join(both)} gets Access-Control-Allow-Origin"
                f" twice and rejects the answer. Remove [functions.{name}.url.cors] (the"
                " function then answers CORS itself, preflight included), or keep the two"
                " lists of origins apart"
            )
    return out


def forced_unlock(aws: Aws, names: Names, progress: Callable[[str], None] | None) -> None:
    """`deploy --force-unlock` with nothing to deploy: remove the lock all the same."""
    held = unlock(aws, names)
    if progress:
        what = f"removed the lock {lock_parameter(names)} ({held})" if held else "no lock held"
        progress(f"{what}: --force-unlock (nothing to deploy)")


def migration_warnings(observed: Observed, state_env: list[str]) -> list[str]:
    """What a deploy that retires a stage's old single function says about it: variables
    set by hand that the new functions got too, and an old role kept for its grants."""
    out: list[str] = []
    carried = carried_environment(observed, state_env)
    if carried:
        out.append(
            "the old function's variables that scarab did not set were copied to both new"
            f" functions: {', '.join(sorted(carried))}; add them to [functions.<name>"
            "].environment, or remove them from the function that does not need them"
        )
    for name, unit in sorted(observed.retired.items()):
        grants = foreign_grants(unit.role) if unit.role else []
        if unit.role is not None and grants:
            out.append(
                f"the old role of {name} ({unit.role.arn.rsplit('/', 1)[-1]}) was kept: it has"
                f" grants scarab did not make ({', '.join(grants)}); if the new functions need"
                " them, grant them to their roles, then delete the old role"
                " (aws iam delete-role, after removing its policies)"
            )
    return out


# describe_alarms takes at most this many AlarmNames.
_ALARM_NAMES_PER_CALL = 100


@dataclass(frozen=True)
class Alarm:
    """An alarm in ALARM and its StateReason."""

    name: str
    reason: str


def firing(aws: Aws, alarm_names: Sequence[str]) -> Alarm | None:
    """The first (by name) of `alarm_names` whose state is ALARM, or None."""
    cw = aws.client("cloudwatch")
    hits: list[Alarm] = []
    names = sorted(alarm_names)
    for start in range(0, len(names), _ALARM_NAMES_PER_CALL):
        chunk = names[start : start + _ALARM_NAMES_PER_CALL]
        page = call(cw.describe_alarms, AlarmNames=chunk)
        for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
            if alarm.get("StateValue") == "ALARM" and alarm["AlarmName"] in chunk:
                hits.append(Alarm(str(alarm["AlarmName"]), str(alarm.get("StateReason", ""))))
    return min(hits, key=lambda a: a.name) if hits else None


def check_canary_alarms(aws: Aws, alarm_names: Sequence[str]) -> None:
    """Refuse a canary while one of the alarms its bake watches is in ALARM already (from
    the traffic the live version served): the bake would roll back at its first look,
    whatever the new version does, and blame it. CodeDeploy, too, judges a deployment by
    the alarms' state during it; scarab asks for a quiet stage first."""
    alarm = firing(aws, alarm_names) if alarm_names else None
    if alarm is None:
        return
    raise ScarabError(
        f"Alarm {alarm.name} is in ALARM already ({alarm.reason or 'no reason given'}),"
        " before the canary has served a request: its bake would roll the new version back"
        " at once for what the live version did. Nothing was changed. Wait until the alarm"
        " is OK again ('scarab alarms' shows it), or deploy without --canary."
    )
