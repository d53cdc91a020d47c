"""Read the deployed gateway from the emulator, and keep re-reading it in the background.

`load_snapshot` makes a handful of API calls (REST API, stage, resources with their
methods, gateway responses, usage plans and their keys, the integrated functions).
`SnapshotWatcher` repeats it every `interval` seconds on a thread and swaps the
result in atomically, so key rotation, revocation, plan changes and redeploys done
with the CLI apply without restarting serve, and no request waits on the emulator.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scarab.errors import ScarabError
from scarab.serve.aliases import LATEST, FunctionTarget, function_name, routing_problem, split_ref
from scarab.serve.routing import Router
from scarab.serve.snapshot import (
    ApiKey,
    FunctionConfig,
    FunctionUrl,
    Snapshot,
    UsagePlan,
    choose_local_key,
    parse_function,
    parse_gateway_responses,
    parse_key,
    parse_plan,
    parse_resources,
)

log = logging.getLogger("scarab.serve")

DEFAULT_ACCOUNT = "123456789012"


class SnapshotError(ScarabError):
    """The deployed API cannot be read (gone, or the emulator does not answer)."""


def emulator_clients(endpoint_url: str, region: str) -> tuple[Any, Any]:
    """apigateway and lambda clients for the emulator (fake credentials, short timeouts)."""
    from scarab.emulator import emulator_session

    session = emulator_session(region)
    config = Config(
        connect_timeout=3, read_timeout=15, retries={"max_attempts": 2, "mode": "standard"}
    )
    return (
        session.client("apigateway", endpoint_url=endpoint_url, config=config),
        session.client("lambda", endpoint_url=endpoint_url, config=config),
    )


def _pages(call: Callable[..., dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    position = None
    while True:
        page = call(**kwargs, **({"position": position} if position else {}), limit=500)
        items.extend(page.get("items") or [])
        position = page.get("position")
        if not position:
            return items


def _grants_public_url(lam: Any, function: str) -> bool:
    """Whether `function`'s resource policy lets anyone invoke its URL."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    except ClientError:
        return False  # no policy at all
    for statement in policy.get("Statement", []):
        principal = statement.get("Principal")
        anyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*")
        if (
            statement.get("Effect") == "Allow"
            and anyone
            and statement.get("Action") in ("lambda:InvokeFunctionUrl", "lambda:*")
        ):
            return True
    return False


def load_snapshot(apigw: Any, lam: Any, rest_api_id: str, stage: str, region: str) -> Snapshot:
    """Read everything the gateway enforces for `rest_api_id`/`stage` from the emulator."""
    try:
        api = apigw.get_rest_api(restApiId=rest_api_id)
        stage_info = apigw.get_stage(restApiId=rest_api_id, stageName=stage)
        resources = parse_resources(
            _pages(apigw.get_resources, restApiId=rest_api_id, embed=["methods"])
        )
        responses = parse_gateway_responses(
            _pages(apigw.get_gateway_responses, restApiId=rest_api_id)
        )
        plans: list[UsagePlan] = []
        plan_keys: dict[str, list[str]] = {}
        for raw in _pages(apigw.get_usage_plans):
            plan = parse_plan(raw, rest_api_id, stage)
            if plan is None:
                continue
            plans.append(plan)
            plan_keys[plan.id] = [
                str(k["id"]) for k in _pages(apigw.get_usage_plan_keys, usagePlanId=plan.id)
            ]
        keys_by_id: dict[str, ApiKey] = {}
        if plans:
            for raw in _pages(apigw.get_api_keys, includeValues=True):
                key = parse_key(raw)
                keys_by_id[key.id] = key
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise SnapshotError(
            f"the deployed API {rest_api_id}/{stage} is not readable ({code})"
        ) from exc
    except BotoCoreError as exc:
        raise SnapshotError(f"the emulator does not answer ({type(exc).__name__})") from exc

    stage_variables = MappingProxyType(
        {str(k): str(v) for k, v in (stage_info.get("variables") or {}).items()}
    )
    usable: dict[str, tuple[ApiKey, UsagePlan]] = {}
    local_candidates: list[ApiKey] = []
    for plan in plans:
        for key_id in plan_keys.get(plan.id, []):
            found = keys_by_id.get(key_id)
            if found is None or not found.value:
                continue
            usable.setdefault(found.value, (found, plan))
            local_candidates.append(found)

    functions: dict[str, FunctionConfig] = {}
    targets: dict[str, FunctionTarget] = {}
    problems: dict[str, str] = {}
    account_id = DEFAULT_ACCOUNT
    for resource in resources:
        for method in resource.methods.values():
            integration = method.integration
            ref = integration.function_ref(stage_variables) if integration else None
            if ref is None or ref in targets or ref in problems:
                continue
            try:
                target = resolve_target(lam, ref)
            except RoutingProblem as exc:
                problems[ref] = str(exc)
                continue
            except ClientError:
                continue  # the integration points nowhere: invoking it is a 500
            except BotoCoreError as exc:
                raise SnapshotError(f"the emulator does not answer ({type(exc).__name__})") from exc
            targets[ref] = target
            functions[ref] = target.primary
            arn = target.primary.arn
            account_id = arn.split(":")[4] if arn.count(":") >= 5 else account_id

    urls: dict[str, FunctionUrl] = {}
    for fn in {f.name: f for f in functions.values()}.values():
        try:
            got = lam.get_function_url_config(FunctionName=fn.name)
        except ClientError:
            continue  # no Function URL
        except BotoCoreError as exc:
            raise SnapshotError(f"the emulator does not answer ({type(exc).__name__})") from exc
        auth = str(got.get("AuthType") or "AWS_IAM")
        url_target: FunctionTarget | None = None
        url_fn = fn
        # A URL on an alias or version reports the qualified ARN (AWS does; moto keeps
        # no qualifier, so its URLs stay on $LATEST).
        _, qualifier = split_ref(str(got.get("FunctionArn") or ""))
        if qualifier is not None:
            try:
                url_target = resolve_target(lam, str(got["FunctionArn"]))
            except (RoutingProblem, ClientError) as exc:
                log.debug("the Function URL of %s routes nowhere: %s", fn.name, exc)
                continue
            except BotoCoreError as exc:
                raise SnapshotError(f"the emulator does not answer ({type(exc).__name__})") from exc
            url_fn = url_target.primary
        urls[fn.name] = FunctionUrl(
            function=url_fn,
            url=str(got.get("FunctionUrl") or ""),
            auth=auth,
            cors=MappingProxyType(dict(got.get("Cors") or {})),
            public=auth == "NONE" and _grants_public_url(lam, fn.name),
            target=url_target,
        )

    return Snapshot(
        rest_api_id=rest_api_id,
        stage=stage,
        region=region,
        account_id=account_id,
        binary_media_types=tuple(str(t) for t in api.get("binaryMediaTypes") or ()),
        stage_variables=stage_variables,
        router=Router(resources),
        gateway_responses=responses,
        keys=MappingProxyType(usable),
        functions=MappingProxyType(functions),
        local_key=choose_local_key(local_candidates),
        plans=tuple(plans),
        urls=MappingProxyType(urls),
        targets=MappingProxyType(targets),
        problems=MappingProxyType(problems),
        api_name=str(api.get("name") or ""),
    )


class RoutingProblem(Exception):
    """A qualified reference whose alias routing cannot be served (the message says why)."""


def resolve_target(lam: Any, ref: str) -> FunctionTarget:
    """What `ref` runs: the function (unqualified), one version, or an alias's version
    plus its weighted additional versions, each with its own configuration. Raises
    ClientError when the function, version or alias does not exist, RoutingProblem when
    the alias's weights are not servable."""
    base, qualifier = split_ref(ref)
    name = function_name(base)
    if qualifier is None or qualifier == LATEST:
        fn = parse_function(lam.get_function_configuration(FunctionName=base))
        return FunctionTarget(function=fn.name, qualifier=qualifier, primary=fn)
    if qualifier.isdigit():
        fn = _version(lam, base, qualifier)
        return FunctionTarget(function=fn.name, qualifier=qualifier, primary=fn)
    alias = lam.get_alias(FunctionName=base, Name=qualifier)
    primary_version = str(alias.get("FunctionVersion") or LATEST)
    weights = dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
    known = {primary_version}
    if weights:
        known |= {
            # By name: the emulator lists no versions for an ARN.
            str(v["Version"])
            for v in _version_list(lam, name)
            if str(v.get("Version")) != LATEST
        }
    problem = routing_problem(primary_version, weights, known)
    if problem is not None:
        raise RoutingProblem(f"alias {name}:{qualifier}: {problem}")
    primary = _version(lam, base, primary_version)
    weighted = tuple((_version(lam, base, str(v)), float(w)) for v, w in sorted(weights.items()))
    return FunctionTarget(function=name, qualifier=qualifier, primary=primary, weighted=weighted)


def _version(lam: Any, base: str, version: str) -> FunctionConfig:
    if version == LATEST:
        return parse_function(lam.get_function_configuration(FunctionName=base))
    config = dict(lam.get_function_configuration(FunctionName=base, Qualifier=version))
    config["Version"] = version  # what was asked for, whatever the emulator echoes
    return parse_function(config)


def _version_list(lam: Any, base: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    marker = None
    while True:
        page = lam.list_versions_by_function(
            FunctionName=base, **({"Marker": marker} if marker else {})
        )
        out.extend(page.get("Versions") or [])
        marker = page.get("NextMarker")
        if not marker:
            return out


class SnapshotWatcher:
    """Holds the current snapshot; a daemon thread refreshes it every `interval` seconds."""

    def __init__(
        self,
        endpoint_url: str,
        rest_api_id: str,
        stage: str,
        region: str,
        interval: float = 0.5,
    ) -> None:
        self.rest_api_id = rest_api_id
        self.stage = stage
        self.region = region
        self.interval = interval
        self._apigw, self._lambda = emulator_clients(endpoint_url, region)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.current: Snapshot | None = None
        self.listeners: list[Callable[[Snapshot], None]] = []

    def refresh(self) -> Snapshot:
        """Read the emulator now and publish the result (raises SnapshotError)."""
        snapshot = load_snapshot(
            self._apigw, self._lambda, self.rest_api_id, self.stage, self.region
        )
        self.current = snapshot  # one reference assignment: readers see old or new
        for listener in self.listeners:
            listener(snapshot)
        return snapshot

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scarab-serve-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except SnapshotError as exc:
                if not self._failing:
                    log.warning("keeping the last known gateway state: %s", exc)
                self._failing = True
            except Exception:  # never let the refresher die silently
                log.exception("reading the deployed gateway failed")
                self._failing = True
            else:
                if self._failing:
                    log.warning("the deployed gateway is readable again")
                self._failing = False
