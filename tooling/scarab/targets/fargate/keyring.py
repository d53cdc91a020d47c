"""The server's API keys (--target fargate): list, create, rotate, revoke.

The keys live in one Secrets Manager secret (Names.server_keys_secret) in the server's
format (lens.server.keys). Every enabled key is accepted, so a rotation adds the next
key `<app>-<stage>-key-<n>` beside the old ones (clients switch over with no downtime)
and a revocation removes one. Changes are one PutSecretValue, run by the deploy core's
executor under the stage lock. Values are returned to the caller only (create/rotate,
list with values): never logged, never in the state record.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors, call
from scarab.config import ScarabConfig
from scarab.deploy.executor import Executor
from scarab.deploy.instructions import ApiCall, Step
from scarab.errors import EXIT_USAGE, ScarabError
from scarab.models import use_function_code
from scarab.stage import Stage, open_stage
from scarab.targets.fargate.models import new_key


@dataclass
class ServerKeyInfo:
    id: str
    name: str
    enabled: bool
    created: str
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.value is None:
            data.pop("value")
        return data


def _usage(message: str) -> ScarabError:
    e = ScarabError(message)
    e.exit_code = EXIT_USAGE
    return e


def _stage(
    config: ScarabConfig, project_dir: Path, endpoint_url: str | None, aws: Aws | None
) -> Stage:
    use_function_code(project_dir)
    return open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)


def _read_ring(st: Stage) -> Any:
    from lens.server.keys import KeyRingError, parse_keys

    name = st.names.server_keys_secret
    missing = {
        "ResourceNotFoundException": f"The stage {st.names.stage} has no key secret {name}."
        " Run 'scarab deploy --target fargate' first."
    }
    with aws_errors(missing):
        got = call(st.aws.client("secretsmanager").get_secret_value, SecretId=name)
    try:
        return parse_keys(str(got.get("SecretString", "")))
    except KeyRingError as exc:
        raise ScarabError(
            f"The secret {name} is not a key ring: {exc}. Fix it by hand or run 'scarab"
            " destroy --target fargate' and deploy again (the clients get new keys)."
        ) from None


def _write_ring(st: Stage, ring: Any, why: str) -> None:
    from lens.server.keys import dump_keys

    put = ApiCall(
        "secretsmanager",
        "PutSecretValue",
        {"SecretId": st.names.server_keys_secret, "SecretString": dump_keys(ring)},
    )
    res = f"secretsmanager.secret {st.names.server_keys_secret}"
    Executor(st.aws).execute([Step(res, "update", why, (put,))])


def _info(key: Any, with_value: bool) -> ServerKeyInfo:
    return ServerKeyInfo(
        key.id, key.name, key.enabled, key.created, key.value if with_value else None
    )


# A key's name: printable, unpadded, short. `keys list` prints one line per key, so a
# control character (a newline) would split one key's line in two.
_KEY_NAME_MAX = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key_name(name: str) -> str:
    """`name` if it can name a key; a usage error saying why not."""
    if not name.strip():
        raise _usage("A key needs a key name.")
    if _CONTROL.search(name):
        raise _usage(f"The key name {name!r} has a control character; use printable ones.")
    if name != name.strip():
        raise _usage(f"The key name {name!r} starts or ends with a space; remove it.")
    if len(name) > _KEY_NAME_MAX:
        raise _usage(f"The key name is {len(name)} characters; use at most {_KEY_NAME_MAX}.")
    return name


def _number(name: str) -> int:
    m = re.search(r"-key-(\d+)$", name)
    return int(m.group(1)) if m else 0


def list_keys(
    config: ScarabConfig, *, project_dir: Path, endpoint_url: str | None = None,
    aws: Aws | None = None, include_values: bool = False,
) -> list[ServerKeyInfo]:  # fmt: skip
    st = _stage(config, project_dir, endpoint_url, aws)
    ring = _read_ring(st)
    keys = sorted(ring.keys, key=lambda k: (_number(k.name), k.created, k.id))
    return [_info(k, include_values) for k in keys]


def create_key(
    config: ScarabConfig, name: str | None = None, *, project_dir: Path,
    endpoint_url: str | None = None, aws: Aws | None = None,
) -> ServerKeyInfo:  # fmt: skip
    """Add a key to the ring (`name` None: the next `<app>-<stage>-key-<n>`); the returned
    info carries its value."""
    if name is not None:
        check_key_name(name)
    st = _stage(config, project_dir, endpoint_url, aws)  # lens importable from here on
    from lens.server.keys import KeyRing, ServerKey

    with st.lock(
        "keys rotate --target fargate" if name is None else "keys create --target fargate"
    ):
        ring = _read_ring(st)
        if name is None:
            name = st.names.key(max([_number(k.name) for k in ring.keys] + [0]) + 1)
        if any(k.name == name for k in ring.keys):
            raise _usage(f"A key named {name} already exists; pick another name.")
        # `keys revoke` takes an id or a name: one key's name equal to another's id
        # would make that revoke remove both.
        same_id = next((k for k in ring.keys if k.id == name), None)
        if same_id is not None:
            raise _usage(f"{name} is the id of the key {same_id.name}; pick another name.")
        key = ServerKey(**new_key(name))
        _write_ring(st, KeyRing(keys=(*ring.keys, key)), f"add {name}")
    return _info(key, True)


def rotate_key(
    config: ScarabConfig, *, project_dir: Path, endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> ServerKeyInfo:  # fmt: skip
    """The next key; the old ones keep working until revoked."""
    return create_key(config, None, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)


def revoke_key(
    config: ScarabConfig, key_id: str, *, project_dir: Path, endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> ServerKeyInfo:  # fmt: skip
    """Remove the key `key_id` (its id, or its name) from the ring; the server refuses
    it once it reads the ring again. The last key is never removed."""
    st = _stage(config, project_dir, endpoint_url, aws)  # lens importable from here on
    from lens.server.keys import KeyRing

    with st.lock("keys revoke --target fargate"):
        ring = _read_ring(st)
        doomed = [k for k in ring.keys if key_id in (k.id, k.name)]
        if not doomed:
            raise _usage(
                f"{key_id} is not a key of the stage {st.names.stage}'s server."
                " 'scarab keys list --target fargate' shows its keys."
            )
        kept = tuple(k for k in ring.keys if k not in doomed)
        if not any(k.enabled for k in kept):
            raise _usage(
                f"{key_id} is the server's last key: revoking it would lock every client out."
                " Run 'scarab keys rotate --target fargate' first, switch the clients to the"
                " new key, then revoke this one."
            )
        _write_ring(st, KeyRing(keys=kept), f"revoke {doomed[0].name}")
    return _info(doomed[0], False)


def first_value(
    config: ScarabConfig, *, project_dir: Path, endpoint_url: str | None = None,
    aws: Aws | None = None,
) -> ServerKeyInfo | None:  # fmt: skip
    """The first enabled key with its value (deploy --show-key)."""
    keys = list_keys(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws,
                     include_values=True)  # fmt: skip
    return next((k for k in keys if k.enabled), None)
