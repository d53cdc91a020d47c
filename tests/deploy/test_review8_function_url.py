"""Review 8: [functions.<name>.url] settings scarab accepts but AWS or a browser cannot.

Each failing test's docstring names what breaks and why it matters.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scarab.config import load_config
from scarab.deploy.export import render
from scarab.errors import ConfigError

from tests.deploy.test_export import lint_matches


def with_url(project: Path, cors: str) -> None:
    text = (project / "scarab.toml").read_text()
    (project / "scarab.toml").write_text(
        text + '\n[functions.models.url]\nauth = "NONE"\n[functions.models.url.cors]\n' + cors
    )


def test_review8_options_in_allow_methods_is_refused_or_exports_clean(project: Path) -> None:
    """BREAKS: config._HTTP_METHODS lists "OPTIONS", but Lambda's Cors.AllowMethods takes
    at most 6 characters per item (GET PUT HEAD POST PATCH DELETE or *): AWS answers
    CreateFunctionUrlConfig with a ValidationException in the middle of a deploy (moto
    accepts it, so every local run is green), and the exported template fails cfn-lint
    (E3030 'OPTIONS' is not one of [...], E3033 longer than 6). The preflight is
    answered by the URL anyway, so OPTIONS is never needed: the config should refuse it
    with a clear message."""
    with_url(project, 'allow_origins = ["https://dash.example.com"]\n'
                      'allow_methods = ["GET", "OPTIONS"]\n')  # fmt: skip
    try:
        config = load_config(project)
    except ConfigError as exc:
        assert "OPTIONS" in str(exc)
        return
    template = render(config, project_dir=project, fmt="cloudformation")
    found = lint_matches(template)
    assert found["E"] == [], found["E"]


def test_review8_a_mixed_case_origin_can_never_match(project: Path) -> None:
    """BREAKS: `allow_origins = ["https://Dash.example.com"]` is accepted as is, but a
    browser serialises the Origin header with a lower-case scheme and host
    (https://dash.example.com), and serve (function_url._allowed_origin) and
    guards.double_cors compare the strings exactly: the URL silently never answers CORS
    for that site, and the double-CORS warning misses it. The config should lower-case
    the scheme and host, or refuse the origin with a message saying why."""
    with_url(project, 'allow_origins = ["https://Dash.example.com"]\n')
    try:
        config = load_config(project)
    except ConfigError:
        return
    url = config.function_url("models")
    assert url is not None and url.cors is not None
    assert url.cors.allow_origins == ["https://dash.example.com"]


@pytest.mark.parametrize("methods", ['["GET", "POST"]', '["*"]'])
def test_review8_control_valid_methods_export_clean(project: Path, methods: str) -> None:
    """Holds: the methods Lambda does take export lint-clean."""
    with_url(project, f'allow_origins = ["https://dash.example.com"]\nallow_methods = {methods}\n')
    template = render(load_config(project), project_dir=project, fmt="cloudformation")
    assert lint_matches(template)["E"] == []
