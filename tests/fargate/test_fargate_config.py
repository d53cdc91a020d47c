"""[fargate] in scarab.toml and the options --target fargate refuses: usage errors
(exit 2) that say what is wrong, before any AWS call."""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.cli import app
from scarab.config import ScarabConfig, load_config
from scarab.targets.fargate.settings import CPU_MEMORY
from typer.testing import CliRunner

# Nothing listens here: a command that reached AWS would fail with exit 1, not 2.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return tmp_path


def _run(project: Path, fargate: str, *args: str) -> tuple[int, str]:
    (project / "scarab.toml").write_text(f'app = "scarab"\nstage = "test"\n\n[fargate]\n{fargate}')
    got = CliRunner().invoke(
        app, [*(args or ("plan",)), "--target", "fargate", "--endpoint-url", NOWHERE]
    )
    return got.exit_code, got.output


@pytest.mark.parametrize(
    ("fargate", "says"),
    [
        ("cpu = 300\n", "Fargate has no task size of 300 CPU units; use one of 256, 512, 1024"),
        ("cpu = 256\nmemory = 4096\n",
         "memory = 4096 does not go with cpu = 256: Fargate allows 512, 1024, 2048 MiB"),
        ("cpu = 2048\nmemory = 3072\n",
         "Fargate allows 4096 to 16384 in steps of 1024 MiB"),
        ('allowed_cidrs = ["10.0.0.1/24"]\n', "did you mean 10.0.0.0/24?"),
        ('allowed_cidrs = ["everyone"]\n', "'everyone' is not a CIDR block"),
        ('subnets = ["subnet-xyz"]\n', "'subnet-xyz' is not a subnet id"),
        ("port = 0\n", "fargate.port"),
        ("desired_count = -1\n", "fargate.desired_count"),
        ("cpus = 256\n", "unknown key 'fargate.cpus'; allowed keys here: allowed_cidrs, cpu"),
    ],
)  # fmt: skip
def test_bad_fargate_settings_are_usage_errors(project: Path, fargate: str, says: str) -> None:
    code, output = _run(project, fargate)
    assert code == 2, output
    assert says in " ".join(output.split())
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("deploy", "--canary", "10"), "--canary goes with the Lambda stage"),
        (("deploy", "--flavor", "local"), "--flavor goes with the Lambda stage"),
        (("plan", "--package", "zip"), "--package zip: --target fargate runs the server image"),
        (("destroy", "--include-models", "--yes"), "--target fargate made no model registry"),
    ],
)
def test_options_that_mean_nothing_on_fargate_are_refused(
    project: Path, args: tuple[str, ...], says: str
) -> None:
    code, output = _run(project, "", *args)
    assert code == 2, output
    assert says in " ".join(output.split())


def test_defaults_and_every_documented_size_validate() -> None:
    f = ScarabConfig().fargate
    assert (f.cpu, f.memory, f.desired_count, f.port) == (256, 512, 1, 8080)
    assert f.allowed_cidrs == [] and f.subnets == []
    # The table's corners, as the ECS reference gives them.
    assert CPU_MEMORY[1024] == (2048, 3072, 4096, 5120, 6144, 7168, 8192)
    assert (CPU_MEMORY[4096][0], CPU_MEMORY[4096][-1]) == (8192, 30720)
    assert CPU_MEMORY[8192][:2] == (16384, 20480) and CPU_MEMORY[8192][-1] == 61440
    assert CPU_MEMORY[16384][:2] == (32768, 40960) and CPU_MEMORY[16384][-1] == 122880
    for cpu, memories in CPU_MEMORY.items():
        for memory in memories:
            ScarabConfig.model_validate({"fargate": {"cpu": cpu, "memory": memory}})


def test_cidrs_are_kept_in_their_canonical_spelling(tmp_path: Path) -> None:
    (tmp_path / "scarab.toml").write_text(
        '[fargate]\nallowed_cidrs = ["2001:DB8::/32", "198.51.100.7/32"]\n'
    )
    assert load_config(tmp_path).fargate.allowed_cidrs == ["2001:db8::/32", "198.51.100.7/32"]
