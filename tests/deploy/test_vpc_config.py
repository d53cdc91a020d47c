"""[functions.<name>.vpc]: the subnets and security groups a function runs in, checked
when scarab.toml is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.errors import ConfigError

from tests.deploy.test_config import write

SUBNET = "subnet-0123456789abcdef0"
GROUP = "sg-0123456789abcdef0"


def _error(tmp_path: Path, text: str) -> str:
    write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.exit_code == 2
    return str(info.value)


def test_a_vpc_is_read_for_its_function_only(tmp_path: Path) -> None:
    write(
        tmp_path,
        f'[functions.analyze.vpc]\nsubnet_ids = ["{SUBNET}", "subnet-89abcdef"]\n'
        f'security_group_ids = ["{GROUP}"]\n',
    )
    cfg = load_config(tmp_path)
    vpc = cfg.function_vpc("analyze")
    assert vpc is not None
    assert vpc.subnet_ids == [SUBNET, "subnet-89abcdef"]
    assert vpc.security_group_ids == [GROUP]
    assert cfg.function_vpc("models") is None
    # Not one of the settings [function] shares.
    assert cfg.function_config("analyze") == cfg.function


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (f'subnet_ids = []\nsecurity_group_ids = ["{GROUP}"]', "at least one subnet id"),
        (f'subnet_ids = ["{SUBNET}"]\nsecurity_group_ids = []', "at least one security group"),
        (f'subnet_ids = ["{SUBNET}"]', "security_group_ids': Field required"),
        (f'security_group_ids = ["{GROUP}"]', "subnet_ids': Field required"),
        (f'subnet_ids = ["sg-0123abcd"]\nsecurity_group_ids = ["{GROUP}"]', "not a subnet id"),
        (f'subnet_ids = ["{SUBNET}"]\nsecurity_group_ids = ["{SUBNET}"]', "not a security group"),
        (f'subnet_ids = ["subnet-XYZ"]\nsecurity_group_ids = ["{GROUP}"]', "8 or 17 lowercase"),
        (f'subnet_ids = ["{SUBNET}", "{SUBNET}"]\nsecurity_group_ids = ["{GROUP}"]', "twice"),
        (
            f'subnet_ids = ["{SUBNET}"]\nsecurity_group_ids = [{", ".join(6 * [repr(GROUP)])}]',
            "at most 5 security group ids",
        ),
        (f'subnet_ids = "{SUBNET}"\nsecurity_group_ids = ["{GROUP}"]', "valid list"),
        (f'subnet_ids = ["{SUBNET}"]\nsecurity_group_ids = ["{GROUP}"]\nvpc_id = "x"', "unknown"),
    ],
)
def test_bad_vpc_tables_are_clear_config_errors(tmp_path: Path, body: str, expected: str) -> None:
    message = _error(tmp_path, f"[functions.analyze.vpc]\n{body}\n")
    assert expected in message, message
    assert "functions.analyze.vpc" in message, message


def test_an_unknown_vpc_key_lists_the_allowed_ones(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        f'[functions.models.vpc]\nsubnet_ids = ["{SUBNET}"]\nsecurity_group_ids = ["{GROUP}"]\n'
        'subnets = ["x"]\n',
    )
    assert "unknown key 'functions.models.vpc.subnets'" in message
    assert "allowed keys here: security_group_ids, subnet_ids" in message


def test_there_is_no_shared_vpc_table(tmp_path: Path) -> None:
    message = _error(tmp_path, f'[function.vpc]\nsubnet_ids = ["{SUBNET}"]\n')
    assert "unknown key 'function.vpc'" in message


def test_the_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("**Functions in a VPC.**", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    write(tmp_path, example)
    vpc = load_config(tmp_path).function_vpc("models")
    assert vpc is not None and len(vpc.subnet_ids) == 2 and len(vpc.security_group_ids) == 1
