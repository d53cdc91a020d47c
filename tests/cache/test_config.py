"""[cache] in scarab.toml: validated like every section, and carried to each function's
environment, where lens.settings reads it (the names agree on both sides)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lens import settings as lens_settings
from lens.cache import shared as lens_shared
from scarab.config import load_config
from scarab.deploy import models
from scarab.deploy.models import desired_state
from scarab.errors import ConfigError

from tests.deploy.test_config import write
from tests.deploy.test_planner import CODES


def _desired(tmp_path: Path, text: str = "") -> models.Desired:
    write(tmp_path, text)
    return desired_state(
        load_config(tmp_path), account_id="123456789012", region="us-east-1", partition="aws",
        codes=CODES,
    )  # fmt: skip


def test_the_defaults_are_five_minutes_shared(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert (cfg.cache.ttl_seconds, cfg.cache.shared) == (300, True)
    d = _desired(tmp_path)
    for fn in d.functions:
        assert fn.environment[models.CACHE_TTL_ENV] == "300", fn.key
        assert fn.environment[models.CACHE_TABLE_ENV] == "scarab-dev-cache", fn.key
    assert d.cache is not None and d.cache.table == "scarab-dev-cache"


def test_the_ttl_reaches_every_function(tmp_path: Path) -> None:
    d = _desired(tmp_path, "[cache]\nttl_seconds = 42\n")
    assert {fn.environment[models.CACHE_TTL_ENV] for fn in d.functions} == {"42"}
    # ... and the function reads it from there.
    env = dict(d.function("analyze").environment)
    parsed = lens_settings.load_settings(env)
    assert (parsed.cache_ttl_s, parsed.cache_table) == (42, "scarab-dev-cache")


def test_not_shared_means_no_table_and_no_table_variable(tmp_path: Path) -> None:
    d = _desired(tmp_path, "[cache]\nshared = false\n")
    assert d.cache is None
    for fn in d.functions:
        assert fn.environment[models.CACHE_TTL_ENV] == "300"
        assert models.CACHE_TABLE_ENV not in fn.environment
        assert "scarab-use-cache" not in fn.inline_policies


def test_a_ttl_of_zero_turns_it_off(tmp_path: Path) -> None:
    d = _desired(tmp_path, "[cache]\nttl_seconds = 0\n")
    assert d.cache is None
    env = dict(d.function("models").environment)
    assert env[models.CACHE_TTL_ENV] == "0" and models.CACHE_TABLE_ENV not in env
    assert lens_settings.load_settings(env).cache_ttl_s == 0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[cache]\nttl_seconds = -1\n", "cache.ttl_seconds"),
        ("[cache]\nttl_seconds = 86401\n", "cache.ttl_seconds"),
        ('[cache]\nttl_seconds = "5m"\n', "cache.ttl_seconds"),
        ('[cache]\nshared = "yes please"\n', "cache.shared"),
        ("[cache]\nsize = 10\n", "cache.size"),
    ],
)
def test_bad_values_and_unknown_keys_are_config_errors(
    tmp_path: Path, text: str, named: str
) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.exit_code == 2
    assert named in str(info.value)


@pytest.mark.parametrize("name", [models.CACHE_TTL_ENV, models.CACHE_TABLE_ENV])
def test_the_cache_variables_are_scarabs_to_set(tmp_path: Path, name: str) -> None:
    write(tmp_path, f'[function.environment]\n{name} = "1"\n')
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert name in str(info.value) and "reserved" in str(info.value)


def test_the_names_agree_with_the_function() -> None:
    assert models.CACHE_TTL_ENV == lens_settings.CACHE_TTL_ENV
    assert models.CACHE_TABLE_ENV == lens_settings.CACHE_TABLE_ENV
    assert models.CACHE_TTL_ATTRIBUTE == lens_shared.EXPIRES_ATTR


def test_the_longest_ttl_the_config_allows_is_one_the_function_takes(tmp_path: Path) -> None:
    d = _desired(tmp_path, "[cache]\nttl_seconds = 86400\n")
    env = dict(d.function("analyze").environment)
    assert lens_settings.load_settings(env).cache_ttl_s == lens_settings.MAX_CACHE_TTL_S == 86400


def test_the_readme_shows_the_cache_policy_the_deploy_writes(tmp_path: Path) -> None:
    import json

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Response cache", 1)[1].split("\n## ", 1)[0]
    (block,) = [json.loads(b.split("```", 1)[0]) for b in section.split("```json\n")[1:]]
    d = desired_state(
        load_config(write(tmp_path, "")), account_id="<account>", region="<region>",
        partition="<partition>", codes=CODES,
    )  # fmt: skip
    for fn in d.functions:
        assert fn.inline_policies["scarab-use-cache"] == block, fn.key
