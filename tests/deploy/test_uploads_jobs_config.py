"""[uploads] and [jobs] in scarab.toml: defaults, bounds, clear errors, the variables
they become (names shared with lens.settings), and the uploads bucket's name length."""

from __future__ import annotations

from pathlib import Path

import pytest
from lens import settings as lens_settings
from scarab.config import load_config
from scarab.deploy import models
from scarab.deploy.models import desired_state
from scarab.errors import ConfigError

from tests.deploy.test_planner import CODES


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "scarab.toml").write_text(text)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.uploads.max_mb == 50 == lens_settings.DEFAULT_UPLOADS_MAX_MB
    assert cfg.jobs.ttl_hours * 3600 == lens_settings.DEFAULT_JOBS_TTL_S
    assert cfg.jobs.retries == 2


def test_values_reach_the_functions_environment(tmp_path: Path) -> None:
    write(tmp_path, "[uploads]\nmax_mb = 5000\n[jobs]\nttl_hours = 720\nretries = 0\n")
    cfg = load_config(tmp_path)
    d = desired_state(
        cfg, account_id="123456789012", region="us-east-1", partition="aws", codes=CODES
    )
    analyze, models_fn = d.function("analyze"), d.function("models")
    assert analyze.environment["SCARAB_UPLOADS_MAX_BYTES"] == str(5000 * 1048576)
    assert analyze.environment["SCARAB_JOBS_TTL_S"] == str(720 * 3600)
    assert (
        analyze.environment["SCARAB_UPLOADS_BUCKET"] == "scarab-dev-uploads-123456789012-us-east-1"
    )
    assert analyze.environment["SCARAB_JOBS_TABLE"] == "scarab-dev-jobs"
    assert models_fn.environment["SCARAB_UPLOADS_MAX_BYTES"] == str(5000 * 1048576)
    assert "SCARAB_JOBS_TABLE" not in models_fn.environment
    assert d.jobs is not None and d.jobs.invoke_config["MaximumRetryAttempts"] == 0


@pytest.mark.parametrize(
    ("text", "key", "bound"),
    [
        ("[uploads]\nmax_mb = 0\n", "uploads.max_mb", "greater than or equal to 1"),
        ("[uploads]\nmax_mb = 5001\n", "uploads.max_mb", "less than or equal to 5000"),
        ('[uploads]\nmax_mb = "big"\n', "uploads.max_mb", "valid integer"),
        ("[uploads]\nmax_mb = 1.5\n", "uploads.max_mb", "integer"),
        ("[jobs]\nttl_hours = 0\n", "jobs.ttl_hours", "greater than or equal to 1"),
        ("[jobs]\nttl_hours = 721\n", "jobs.ttl_hours", "less than or equal to 720"),
        ("[jobs]\nretries = 3\n", "jobs.retries", "less than or equal to 2"),
        ("[jobs]\nretries = -1\n", "jobs.retries", "greater than or equal to 0"),
        # Types as written (review16): not coerced to 1, 2 or 1.
        ("[uploads]\nmax_mb = true\n", "uploads.max_mb", "valid integer"),
        ('[jobs]\nretries = "2"\n', "jobs.retries", "valid integer"),
        ("[jobs]\nttl_hours = 1.0\n", "jobs.ttl_hours", "valid integer"),
    ],
)
def test_out_of_bounds_values_name_the_key_and_the_bound(
    tmp_path: Path, text: str, key: str, bound: str
) -> None:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    msg = str(info.value)
    assert f"'{key}'" in msg and bound in msg, msg
    assert info.value.exit_code == 2


def test_unknown_keys_list_the_allowed_ones(tmp_path: Path) -> None:
    write(tmp_path, "[jobs]\nretry = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "unknown key 'jobs.retry'; allowed keys here: retries, ttl_hours." in str(info.value)
    write(tmp_path, "[uploads]\nmax_bytes = 1\n")
    with pytest.raises(ConfigError, match="allowed keys here: max_mb"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    "name",
    ["SCARAB_UPLOADS_BUCKET", "SCARAB_UPLOADS_MAX_BYTES", "SCARAB_JOBS_TABLE", "SCARAB_JOBS_TTL_S"],
)
def test_the_variables_are_reserved(tmp_path: Path, name: str) -> None:
    write(tmp_path, f'[function.environment]\n{name} = "x"\n')
    with pytest.raises(ConfigError, match=f"{name} is reserved"):
        load_config(tmp_path)


def test_the_names_are_lens_settings(tmp_path: Path) -> None:
    assert (
        models.UPLOADS_BUCKET_ENV,
        models.UPLOADS_MAX_BYTES_ENV,
        models.JOBS_TABLE_ENV,
        models.JOBS_TTL_ENV,
        models.UPLOADS_PREFIX,
        models.JOBS_KEY_ATTRIBUTE,
        models.JOBS_TTL_ATTRIBUTE,
    ) == (
        lens_settings.UPLOADS_BUCKET_ENV,
        lens_settings.UPLOADS_MAX_BYTES_ENV,
        lens_settings.JOBS_TABLE_ENV,
        lens_settings.JOBS_TTL_ENV,
        lens_settings.UPLOADS_PREFIX,
        lens_settings.JOBS_KEY_ATTRIBUTE,
        lens_settings.JOBS_TTL_ATTRIBUTE,
    )


def test_an_uploads_bucket_name_over_63_characters_is_refused(tmp_path: Path) -> None:
    # <app>-<stage>-uploads-<12>-<region>: 63 characters fit, 64 do not.
    region = "us-east-1"
    fits = 63 - len("-uploads-") - 12 - 1 - len(region)
    app = "a" * (fits - len("-dev"))
    write(tmp_path, f'app = "{app}"\nregion = "{region}"\n')
    assert load_config(tmp_path).app == app
    write(tmp_path, f'app = "{app}x"\nregion = "{region}"\n')
    with pytest.raises(ConfigError, match="the uploads bucket name") as info:
        load_config(tmp_path)
    assert "(64 characters; S3 allows 63)" in str(info.value)
