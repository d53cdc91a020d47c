"""`scarab versions`: each function's published versions, newest first, with what each
records (time, code sha256, git commit) and which alias sends it traffic, at what weight."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors, error_code
from scarab.config import ScarabConfig, UnknownFunctionError
from scarab.deploy.planner_versions import parse_version_description
from scarab.functions import FUNCTIONS
from scarab.stage import open_stage

# How many characters of a code sha256 and a commit the table shows.
SHORT = 12


def alias_weights(aliases: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Version -> the aliases that route to it, each {"alias", "weight"} (the primary
    version gets what the additional weights leave: 1 - their sum)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for alias in sorted(aliases, key=lambda a: str(a.get("Name"))):
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        primary = round(1.0 - sum(float(w) for w in weights.values()), 6)
        name = str(alias.get("Name"))
        out.setdefault(str(alias.get("FunctionVersion")), []).append(
            {"alias": name, "weight": primary}
        )
        for version, weight in sorted(weights.items()):
            out.setdefault(str(version), []).append({"alias": name, "weight": float(weight)})
    return out


def _function_versions(aws: Aws, function: str) -> dict[str, Any]:
    lam = aws.client("lambda")
    try:
        versions = [
            v
            for page in lam.get_paginator("list_versions_by_function").paginate(
                FunctionName=function
            )
            for v in page.get("Versions", [])
            if str(v.get("Version", "")).isdigit()
        ]
        aliases = [
            a
            for page in lam.get_paginator("list_aliases").paginate(FunctionName=function)
            for a in page.get("Aliases", [])
        ]
    except Exception as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return {"name": function, "deployed": False, "versions": []}
        raise
    routed = alias_weights(aliases)
    rows = []
    for v in sorted(versions, key=lambda v: int(v["Version"]), reverse=True):
        recorded = parse_version_description(v.get("Description"))
        rows.append({
            "version": str(v["Version"]),
            "time": v.get("LastModified"),
            "code_sha256": v.get("CodeSha256"),
            "commit": recorded.get("commit"),
            "scarab": recorded.get("scarab"),
            "config_digest": recorded.get("config"),
            "description": v.get("Description") or "",
            "aliases": routed.get(str(v["Version"]), []),
        })  # fmt: skip
    return {"name": function, "deployed": True, "versions": rows}


def list_versions(
    config: ScarabConfig,
    *,
    project_dir: Path,
    endpoint_url: str | None = None,
    aws: Aws | None = None,
    function: str | None = None,
) -> dict[str, Any]:
    """{"stage", "functions": {key: {"name", "deployed", "versions": [...]}}}, each
    function's versions newest first. `function`: one catalog name only."""
    keys = [f.name for f in FUNCTIONS]
    if function is not None and function not in keys:
        raise UnknownFunctionError(
            f"There is no function {function!r}; the functions are {', '.join(keys)}."
        )
    st = open_stage(config, project_dir=project_dir, endpoint_url=endpoint_url, aws=aws)
    with aws_errors():
        functions = {
            key: _function_versions(st.aws, st.names.function(key).function)
            for key in keys
            if function in (None, key)
        }
    return {"stage": st.names.stage, "functions": functions}


def render_text(data: dict[str, Any]) -> list[str]:
    """The table `scarab versions` prints: one block per function."""
    lines = []
    for key, fn in data["functions"].items():
        lines.append(f"{key} ({fn['name']})")
        if not fn["versions"]:
            why = "no published versions" if fn["deployed"] else "not deployed"
            lines.append(f"  {why}")
            continue
        lines.append(f"  {'VERSION':<8} {'TIME':<29} {'CODE':<{SHORT}} {'COMMIT':<18} ALIASES")
        for v in fn["versions"]:
            commit = v["commit"] or "-"
            dirty = commit.endswith("-dirty")
            commit = commit.removesuffix("-dirty")[:SHORT] + ("-dirty" if dirty else "")
            aliases = ", ".join(f"{a['alias']} {a['weight']:.0%}" for a in v["aliases"])
            lines.append(
                f"  {v['version']:<8} {v['time'] or '-'!s:<29}"
                f" {str(v['code_sha256'] or '-')[:SHORT]:<{SHORT}} {commit:<18} {aliases}".rstrip()
            )
    return lines


__all__ = ["alias_weights", "list_versions", "render_text"]
