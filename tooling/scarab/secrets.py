"""`scarab secrets set`: store the Gemini key in SSM (SecureString) or Secrets Manager,
and point the function at it (GOOGLE_API_KEY_PARAM and GOOGLE_API_KEY_BACKEND).

The value arrives as a Python str (from an environment variable or stdin in the CLI),
never through argv; it is not logged, recorded in state, or printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scarab.aws import Aws, aws_errors, call, error_code
from scarab.config import ScarabConfig
from scarab.deploy.models import secret_environment
from scarab.deploy.waiters import wait_for_function
from scarab.errors import ConfigError, ScarabError
from scarab.stage import open_stage

# Logical secret names accepted by `scarab secrets set NAME`.
SECRET_ALIASES = {"gemini-api-key", "gemini", "google-api-key", "GOOGLE_API_KEY", "GEMINI_API_KEY"}


@dataclass
class SecretResult:
    name: str  # the SSM parameter name or Secrets Manager secret name
    backend: str
    function_wired: bool


def resolve_secret_name(config: ScarabConfig, logical: str) -> str:
    if logical not in SECRET_ALIASES:
        raise ConfigError(
            f"Unknown secret {logical!r}. scarab manages one secret: 'gemini-api-key'"
            f" (stored as {config.secret_name})."
        )
    return config.secret_name


def set_secret(
    config: ScarabConfig,
    value: str,
    *,
    project_dir: Path,
    name: str = "gemini-api-key",
    endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> SecretResult:
    """Store `value` as the stage's Gemini key and wire the function to read it."""
    if not value.strip():
        raise ScarabError("The secret value is empty; nothing was stored.")
    value = value.strip()
    target = resolve_secret_name(config, name)
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
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
                Description=f"Gemini API key for {st.names.base} (scarab)",
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
        wired = _wire_function(st.aws, st.names.function, secret_environment(config))
    return SecretResult(target, config.secrets.backend, wired)


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
