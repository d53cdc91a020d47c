"""`scarab secrets set`: store the Gemini key in SSM (SecureString) or Secrets Manager,
and point the function at it (GOOGLE_API_KEY_PARAM and GOOGLE_API_KEY_BACKEND); or the
prediction log's database URL (`prediction-db-url`), which the next `scarab deploy`
finds and turns the log on with (its packages go into the zips then, so nothing is
wired here).

The value arrives as a Python str (from an environment variable or stdin in the CLI),
never through argv; it is not logged, recorded in state, or printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scarab.aws import Aws, aws_errors, call, error_code
from scarab.config import PREDICTION_DB_SECRET, ScarabConfig, prediction_db_secret_name
from scarab.deploy.models import secret_environment, secret_policy
from scarab.deploy.reader import read_legacy_unit, read_role
from scarab.deploy.waiters import wait_for_function
from scarab.errors import ConfigError, ScarabError
from scarab.functions import FUNCTIONS
from scarab.naming import FunctionNames, Names
from scarab.stage import open_stage

# Logical secret names accepted by `scarab secrets set NAME`.
SECRET_ALIASES = {"gemini-api-key", "gemini", "google-api-key", "GOOGLE_API_KEY", "GEMINI_API_KEY"}
# The prediction log's database URL: SQLAlchemy's dialects it supports ([+driver] allowed).
_DB_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb")
_LOCAL_DB_SCHEMES = ("sqlite",)


@dataclass
class SecretResult:
    name: str  # the SSM parameter name or Secrets Manager secret name
    backend: str
    function_wired: bool
    # The function's role may not read this secret (e.g. after [secrets] backend changed):
    # the function was left reading its previous key, and 'scarab deploy' switches it over.
    role_cannot_read: bool = False
    # The prediction log's URL (not the Gemini key): `scarab deploy` turns the log on.
    log: bool = False


def resolve_secret_name(config: ScarabConfig, logical: str) -> str:
    if logical == PREDICTION_DB_SECRET:
        return prediction_db_secret_name(config.app, config.stage)
    if logical not in SECRET_ALIASES:
        raise ConfigError(
            f"Unknown secret {logical!r}. scarab manages two secrets: 'gemini-api-key'"
            f" (stored as {config.secret_name}) and '{PREDICTION_DB_SECRET}' (the prediction"
            f" log's database URL, stored as"
            f" {prediction_db_secret_name(config.app, config.stage)})."
        )
    return config.secret_name


def database_url_problem(value: str, *, local: bool) -> str | None:
    """Why `value` cannot be the prediction log's database URL, or None. Never quotes
    the value (it holds a password)."""
    scheme, sep, rest = value.partition("://")
    dialect = scheme.split("+", 1)[0].lower()
    allowed = _DB_SCHEMES + (_LOCAL_DB_SCHEMES if local else ())
    if not sep or not rest or dialect not in allowed:
        return (
            "The value is not a database URL the prediction log can use (value not shown):"
            " give dialect://user:password@host:port/database with dialect postgresql or"
            " mysql (mariadb)"
            + (", or sqlite:///path on an emulator" if local else "")
            + ". Nothing was stored."
        )
    if rest.count("@") > 1:
        # The function would read the rest of the password as the host name.
        return (
            "The database URL has an '@' in its password or user name (value not shown):"
            " percent-encode it as %40. Nothing was stored."
        )
    return None


def set_secret(
    config: ScarabConfig,
    value: str,
    *,
    project_dir: Path,
    name: str = "gemini-api-key",
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> SecretResult:
    """Store `value` as the stage's Gemini key and wire the function to read it; or, for
    `prediction-db-url`, as the prediction log's database URL (wired by `scarab deploy`)."""
    if not value.strip():
        raise ScarabError("The secret value is empty; nothing was stored.")
    value = value.strip()
    target = resolve_secret_name(config, name)
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    log = name == PREDICTION_DB_SECRET
    if log:
        problem = database_url_problem(value, local=st.aws.local)
        if problem:
            raise ConfigError(problem)
    what = "Prediction log database URL" if log else "Gemini API key"
    blocked = False
    # The message of an AWS error never contains the value we sent.
    with st.lock("secrets set"), aws_errors():
        if config.secrets.backend == "ssm":
            ssm = st.aws.client("ssm")
            call(
                ssm.put_parameter,
                Name=target,
                Value=value,
                Type="SecureString",
                Overwrite=True,
                Description=f"{what} for {st.names.base} (scarab)",
            )
            call(
                ssm.add_tags_to_resource,
                ResourceType="Parameter",
                ResourceId=target,
                Tags=[{"Key": k, "Value": v} for k, v in st.names.tags.items()],
            )
        else:
            sm = st.aws.client("secretsmanager")
            try:
                call(sm.describe_secret, SecretId=target)
                call(sm.put_secret_value, SecretId=target, SecretString=value)
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                call(
                    sm.create_secret,
                    Name=target,
                    SecretString=value,
                    Tags=[{"Key": k, "Value": v} for k, v in st.names.tags.items()],
                )
        if log:
            return SecretResult(target, config.secrets.backend, False, log=True)
        wired = False
        # The functions that read the key: the analyze function, and the single function
        # of a stage deployed before the split (until the next deploy retires it).
        for fn in gemini_functions(st.names):
            if fn == st.names.legacy and not _legacy_is_ours(st.aws, st.names):
                continue  # that name is another stage's function (see read_legacy_unit)
            if _role_can_read(st.aws, config, st.names, fn):
                wired = _wire_function(st.aws, fn.function, secret_environment(config)) or wired
            else:
                blocked = blocked or _function_exists(st.aws, fn.function)
    return SecretResult(target, config.secrets.backend, wired, role_cannot_read=blocked)


def _legacy_is_ours(aws: Aws, names: Names) -> bool:
    unit = read_legacy_unit(aws, names)
    return unit is not None and unit.function is not None


def gemini_functions(names: Names) -> tuple[FunctionNames, ...]:
    """The stage's functions that may read the Gemini key."""
    return (*(names.function(f.name) for f in FUNCTIONS if f.uses_gemini), names.legacy)


def _role_can_read(aws: Aws, config: ScarabConfig, names: Names, fn: FunctionNames) -> bool:
    """True when the role's inline secret policy grants reading the configured secret
    (read only: `secrets set` never changes IAM; `scarab deploy` does)."""
    role = read_role(aws, fn)
    if role is None:
        return False
    want = secret_policy(config, aws.region, aws.account_id, aws.partition)["Statement"][0]
    doc = role.inline.get(names.inline_policy) or {}
    for stmt in doc.get("Statement") or []:
        actions = stmt.get("Action")
        actions = [actions] if isinstance(actions, str) else list(actions or [])
        resources = stmt.get("Resource")
        resources = [resources] if isinstance(resources, str) else list(resources or [])
        if (
            stmt.get("Effect") == "Allow"
            and want["Action"] in actions
            and want["Resource"] in resources
        ):
            return True
    return False


def _function_exists(aws: Aws, function: str) -> bool:
    try:
        call(aws.client("lambda").get_function_configuration, FunctionName=function)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True


def _wire_function(aws: Aws, function: str, reference: dict[str, str]) -> bool:
    """Set the key's variables on a deployed function (keeping its other variables)."""
    lam = aws.client("lambda")
    try:
        cfg = call(lam.get_function_configuration, FunctionName=function)
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False  # the next deploy sets it
        raise
    env = dict((cfg.get("Environment") or {}).get("Variables") or {})
    if all(env.get(k) == v for k, v in reference.items()):
        return True
    env.update(reference)
    call(lam.update_function_configuration, FunctionName=function, Environment={"Variables": env})
    wait_for_function(aws, function)
    return True
