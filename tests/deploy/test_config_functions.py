"""[functions.<name>]: per-function overrides of [function], checked like [function]."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.errors import ConfigError
from scarab.functions import FUNCTIONS

from tests.deploy.test_config import write

# A made-up key with a well-known key prefix: it must never appear in an error.
MARKER = "AIzaSyFAKE0functions0override0marker"


def _error(tmp_path: Path, text: str) -> ConfigError:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.exit_code == 2
    return info.value


def test_an_override_applies_to_its_function_only(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[function]\nmemory = 1024\ntimeout = 20\nruntime = "python3.13"\n'
        '[function.environment]\nLOG_LEVEL = "INFO"\nFEATURE = "a"\n'
        '[functions.models]\nmemory = 3008\ntimeout = 60\narchitecture = "arm64"\n'
        '[functions.models.environment]\nFEATURE = "b"\nONNX_THREADS = "1"\n',
    )
    cfg = load_config(tmp_path)
    models = cfg.function_config("models")
    assert (models.memory, models.timeout, models.architecture) == (3008, 60, "arm64")
    # Keys the override leaves out keep [function]'s; environment merges, override wins.
    assert models.runtime == "python3.13"
    assert models.environment == {"LOG_LEVEL": "INFO", "FEATURE": "b", "ONNX_THREADS": "1"}
    analyze = cfg.function_config("analyze")
    assert (analyze.memory, analyze.timeout, analyze.architecture) == (1024, 20, "x86_64")
    assert analyze.environment == {"LOG_LEVEL": "INFO", "FEATURE": "a"}
    # [function] itself is unchanged by the merge.
    assert cfg.function.environment == {"LOG_LEVEL": "INFO", "FEATURE": "a"}


def test_every_catalog_function_has_settings_without_overrides(tmp_path: Path) -> None:
    write(tmp_path, "[function]\nmemory = 2048\n")
    cfg = load_config(tmp_path)
    assert cfg.functions == {}
    for fn in FUNCTIONS:
        assert cfg.function_config(fn.name).memory == 2048


def test_an_override_of_one_key_keeps_the_others(tmp_path: Path) -> None:
    write(tmp_path, "[function]\nmemory = 1536\ntimeout = 45\n[functions.analyze]\ntimeout = 29\n")
    analyze = load_config(tmp_path).function_config("analyze")
    assert (analyze.memory, analyze.timeout) == (1536, 29)


@pytest.mark.parametrize("name", ["analyse", "all", "Models"])
def test_an_unknown_function_name_is_a_config_error(tmp_path: Path, name: str) -> None:
    msg = str(_error(tmp_path, f"[functions.{name}]\nmemory = 1024\n"))
    assert f"'functions.{name}'" in msg
    assert f"there is no function {name!r}" in msg and "analyze, models" in msg


def test_function_config_refuses_an_unknown_name(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    with pytest.raises(ConfigError, match="there is no function 'analyse'") as info:
        cfg.function_config("analyse")
    assert isinstance(info.value, KeyError)
    assert "analyze, models" in str(info.value)


def test_an_unknown_key_in_an_override_lists_the_override_keys(tmp_path: Path) -> None:
    msg = str(_error(tmp_path, "[functions.analyze]\nmemry = 1024\n"))
    assert (
        "unknown key 'functions.analyze.memry'; allowed keys here:"
        " architecture, environment, keep_versions, memory, snapstart, timeout, url, vpc." in msg
    )


def test_a_key_only_function_takes_is_refused_in_an_override(tmp_path: Path) -> None:
    # runtime is per stage: [function] has it, [functions.<name>] does not.
    msg = str(_error(tmp_path, '[functions.models]\nruntime = "python3.13"\n'))
    assert "unknown key 'functions.models.runtime'" in msg


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("memory = 64", "greater than or equal to 128"),
        ("memory = 20000", "less than or equal to 10240"),
        ("timeout = 0", "greater than or equal to 1"),
        ("timeout = 901", "less than or equal to 900"),
        ('architecture = "arm"', "'x86_64' or 'arm64'"),
    ],
)
def test_override_values_have_the_function_bounds(tmp_path: Path, line: str, expect: str) -> None:
    key = line.split(" = ")[0]
    msg = str(_error(tmp_path, f"[functions.models]\n{line}\n"))
    assert f"'functions.models.{key}'" in msg and expect in msg
    # The same value is refused the same way in [function].
    same = str(_error(tmp_path, f"[function]\n{line}\n"))
    assert same.replace("'function.", "'functions.models.") == msg


def test_a_reserved_name_is_refused_in_an_override_environment(tmp_path: Path) -> None:
    msg = str(_error(tmp_path, '[functions.analyze.environment]\nSCARAB_MODELS = "x"\n'))
    assert "'functions.analyze.environment'" in msg and "SCARAB_MODELS is reserved" in msg


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        (f'FEATURE_FLAGS = "{MARKER}"', "looks like an API key or token"),
        (f'GITHUB_TOKEN = "{MARKER}"', "GITHUB_TOKEN looks like a secret"),
        (f'UPSTREAM = "https://bob:{MARKER}@db.example"', "embeds credentials in a URL"),
    ],
)
def test_secrets_in_an_override_environment_are_refused_unshown(
    tmp_path: Path, line: str, expect: str
) -> None:
    msg = str(_error(tmp_path, f"[functions.models.environment]\n{line}\n"))
    assert "'functions.models.environment'" in msg and expect in msg
    assert "value not shown" in msg
    assert MARKER not in msg


@pytest.mark.parametrize(
    "text",
    [
        # A table given a string, an environment given a string: the error is about the
        # table or variable, and the value inside is never quoted.
        f'[functions]\nmodels = "{MARKER}"\n',
        f'[functions.models]\nenvironment = "{MARKER}"\n',
        f'functions = "{MARKER}"\n',
        f'[functions.models.environment]\nLIMITS = ["{MARKER}"]\n',
    ],
)
def test_errors_above_an_override_environment_never_show_its_values(
    tmp_path: Path, text: str
) -> None:
    msg = str(_error(tmp_path, text))
    assert "'functions" in msg and "value not shown" in msg
    assert MARKER not in msg


def _too_long(tmp_path: Path, app: str, stage: str) -> str:
    return str(_error(tmp_path, f'app = "{app}"\nstage = "{stage}"\n'))


def test_the_longest_function_role_name_is_checked(tmp_path: Path) -> None:
    # 51-character base: <base>-analyze-role, the longest name, is exactly 64: accepted.
    write(tmp_path, f'app = "{"a" * 40}"\nstage = "{"s" * 10}"\n')
    assert load_config(tmp_path).app == "a" * 40
    # 52-character base: <base>-role (57) and <base>-analyze (60) fit, <base>-analyze-role
    # (65) does not; the deploy would create the first function and fail on the second role.
    app, stage = "a" * 40, "s" * 11
    msg = _too_long(tmp_path, app, stage)
    role = f"{app}-{stage}-analyze-role"
    assert msg == (
        f"scarab.toml: app {app!r} and stage {stage!r} are too long for AWS: the IAM role name"
        f" {role!r} (65 characters; IAM allows 64). Shorten app or stage."
    )


def test_the_longest_function_name_is_checked(tmp_path: Path) -> None:
    # 58-character base: <base>-role (63) fits; <base>-analyze (66) and its role do not.
    app, stage = "a" * 40, "s" * 17
    msg = _too_long(tmp_path, app, stage)
    base = f"{app}-{stage}"
    assert f"the function name '{base}-analyze' (66 characters; Lambda allows 64)" in msg
    assert f"the IAM role name '{base}-analyze-role' (71 characters; IAM allows 64)" in msg
    assert f"the IAM role name '{base}-role'" not in msg


def test_flags_set_the_defaults_and_the_overrides(tmp_path: Path) -> None:
    write(tmp_path, "[function]\nmemory = 1024\n[functions.models]\nmemory = 3008\n")
    cfg = load_config(
        tmp_path,
        {"function.memory": 2048, "function.timeout": 40, "functions.analyze.timeout": 25},
    )
    assert cfg.function.memory == 2048
    analyze, models = cfg.function_config("analyze"), cfg.function_config("models")
    assert (analyze.memory, analyze.timeout) == (2048, 25)
    # A function's own setting is more specific than the default, flag or not.
    assert (models.memory, models.timeout) == (3008, 40)


def test_a_flag_for_an_unknown_function_is_a_config_error(tmp_path: Path) -> None:
    write(tmp_path, "")
    with pytest.raises(ConfigError, match="there is no function 'analyse'"):
        load_config(tmp_path, {"functions.analyse.memory": 1024})
