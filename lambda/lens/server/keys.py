"""The server's API keys: the format of the secret that holds them.

`scarab keys ... --target fargate` writes it and the server reads it (the secret named by
SCARAB_API_KEYS_SECRET). One JSON document:

    {"keys": [{"id": "k-1a2b", "name": "scarab-prod-key-1", "value": "...",
               "enabled": true, "created": "2026-12-02T17:00:00+00:00"}]}

Every enabled key is accepted, so a rotation adds the next key beside the old ones and a
revocation removes one (the same overlap as API Gateway's usage-plan keys).
"""

from __future__ import annotations

import hmac
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ServerKey(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    value: str = Field(min_length=20)
    enabled: bool = True
    created: str = ""


class KeyRing(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    keys: tuple[ServerKey, ...] = ()

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` is the value of an enabled key (compared in constant time)."""
        if not presented:
            return False
        given = presented.encode()
        # Every key is compared, so the time taken does not tell which one nearly matched.
        matches = [hmac.compare_digest(given, k.value.encode()) for k in self.keys if k.enabled]
        return any(matches)


class KeyRingError(ValueError):
    """The secret is not a key ring (the message never contains the secret's text)."""


def parse_keys(text: str) -> KeyRing:
    try:
        return KeyRing.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError, TypeError) as exc:
        # Only where it failed: the document holds key values.
        where = "not JSON" if isinstance(exc, json.JSONDecodeError) else "not a key ring"
        raise KeyRingError(
            f'the API keys secret is {where}: expected {{"keys": [{{"id", "name", "value",'
            ' "enabled", "created"}]}'
        ) from None


def dump_keys(ring: KeyRing) -> str:
    return json.dumps(ring.model_dump(), sort_keys=True)
