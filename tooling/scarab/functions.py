"""The function catalog: every Lambda function a stage has, defined once.

A stage is split into named functions, each with its own handler, pinned requirements
and sources, so each artifact carries only what its routes need: `analyze` (Gemini)
ships no numpy or onnxruntime, `models` (offline ONNX models) no google-genai. Which
routes a function serves is in scarab.deploy.routes (each Route names its function).

`ALL_ROUTES` is the single function every stage had before the split (handler
lens.handler.lambda_handler, every route, lambda/requirements.txt, which includes every
function's list): today's deploy still creates it, and the benchmarks measure against it.

Paths are relative to the project directory; source patterns are fnmatch patterns over
paths relative to the task root lambda/ (`*` also matches `/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scarab.deploy.routes import Route

TASK_ROOT = Path("lambda")
ALL_ROUTES_NAME = "all"
# The prediction log's packages (SQLAlchemy, alembic, the drivers): appended to each
# function's requirements for a lambda zip only when the stage's log is on, so a stage
# without a log database keeps its small zips (lambda/requirements.txt includes it).
LOG_REQUIREMENTS = TASK_ROOT / "requirements" / "log.txt"

# Never shipped by any function: tests and caches inside the source tree.
_COMMON_EXCLUDE = ("*/__pycache__/*", "*.pyc", "*/tests/*", "*/test_*.py")


@dataclass(frozen=True)
class FunctionDef:
    """One Lambda function: its name (`<app>-<stage>-<name>` on AWS), handler and inputs."""

    name: str
    handler: str
    requirements: Path  # relative to the project directory
    description: str
    # Calls Gemini: gets the Gemini settings and key location, and a role that reads the key.
    uses_gemini: bool = False
    # Serves the stage's model registry: gets its table and bucket, and a role reading them.
    reads_registry: bool = False
    source_include: tuple[str, ...] = ("lens/*",)
    source_exclude: tuple[str, ...] = ()
    # Installed files this function's code never loads (fnmatch over paths relative to
    # the install), left out of its zip; tests/deploy/test_function_zips.py runs the
    # function from the extracted zip to prove it.
    prune: tuple[str, ...] = ()

    @property
    def routes(self) -> tuple[Route, ...]:
        """The API routes this function serves (every route for the all-routes function)."""
        from scarab.deploy.routes import ROUTES, routes_for

        return ROUTES if self.name == ALL_ROUTES_NAME else routes_for(self.name)

    def prunes(self, relative: str) -> bool:
        """Whether the installed dependency file at `relative` is left out of the zip."""
        from fnmatch import fnmatchcase

        return any(fnmatchcase(relative, p) for p in self.prune)

    def ships(self, relative: str) -> bool:
        """Whether the source file at `relative` (to lambda/, posix) goes into the artifact."""
        from fnmatch import fnmatchcase

        if not any(fnmatchcase(relative, p) for p in self.source_include):
            return False
        excluded = (*_COMMON_EXCLUDE, *self.source_exclude)
        return not any(fnmatchcase(relative, p) for p in excluded)


# What only the offline models need: their code that imports numpy, and the ONNX files.
_MODELS_ONLY = (
    "lens/predict/artifacts/*",
    "lens/predict/digits.py",
    "lens/predict/tabular.py",
    "lens/predict/forecast.py",
    "lens/predict/images.py",
    "lens/entry/models.py",
)
# google-auth requires cryptography (14 MB with cffi) and pyasn1, but only its
# service-account and JWT credentials import them; lens calls Gemini with an API key.
# google-genai's generated Interactions/Agents client (_gaos, 370 modules) loads only
# when client.interactions, agents, webhooks ... is first used; lens calls
# client.models.generate_content. Pillow's AVIF plugin and
# font rendering: lens reads JPEG, PNG, WebP and GIF and draws no text, and Pillow
# loads both plugins only when present (ImportError means "not supported").
_ANALYZE_PRUNE = (
    "cryptography/*",
    "cryptography-*.dist-info/*",
    "cffi/*",
    "cffi-*.dist-info/*",
    "_cffi_backend.*",
    "pycparser/*",
    "pycparser-*.dist-info/*",
    "pyasn1/*",
    "pyasn1-*.dist-info/*",
    "pyasn1_modules/*",
    "pyasn1_modules-*.dist-info/*",
    "google/genai/_gaos/*",
    "google/genai/_interactions/*",
    "PIL/_avif.*",
    "pillow.libs/libavif-*",
    "PIL/_imagingft.*",
    "pillow.libs/libfreetype-*",
    "pillow.libs/libharfbuzz-*",
)
# The prediction log (lens.log) uses SQLAlchemy Core and alembic's upgrade/downgrade:
# never the ORM, SQLAlchemy's test harness, its MSSQL/Oracle dialects or alembic's
# project templates. SQLAlchemy's compiled extensions are optional (it falls back to the
# same code in Python), and leaving them out keeps the zip the same on both
# architectures and 9 MB smaller.
_LOG_PRUNE = (
    "sqlalchemy/*.so",
    "sqlalchemy/orm/*",
    "sqlalchemy/testing/*",
    "sqlalchemy/dialects/mssql/*",
    "sqlalchemy/dialects/oracle/*",
    "alembic/templates/*",
    "alembic/testing/*",
)
# What only /analyze needs (google-genai is not in the models artifact).
_ANALYZE_ONLY = (
    "lens/gemini.py",
    "lens/prompt.py",
    "lens/routes.py",
    "lens/openapi.py",
    "lens/entry/analyze.py",
)

ANALYZE = FunctionDef(
    name="analyze",
    handler="lens.entry.analyze.lambda_handler",
    requirements=TASK_ROOT / "requirements" / "analyze.txt",
    description=(
        "Gemini analysis: POST /analyze, /uploads and /jobs, GET /jobs/{id}, /health and"
        " /openapi.json"
    ),
    uses_gemini=True,
    # lens.handler serves every route and needs the models' code: not this function's.
    source_exclude=(*_MODELS_ONLY, "lens/handler.py"),
    prune=(*_ANALYZE_PRUNE, *_LOG_PRUNE),
)
MODELS = FunctionDef(
    name="models",
    handler="lens.entry.models.lambda_handler",
    requirements=TASK_ROOT / "requirements" / "models.txt",
    description=(
        "Offline ONNX models: GET /models, POST /predict/{model_id}, GET /forecast/{model_id}"
    ),
    # The jobs run in the analyze function (lens.function imports lens.jobs only for a
    # job's event); the models function reads uploads (lens.uploads) for /predict.
    source_exclude=(*_ANALYZE_ONLY, "lens/jobs/*", "lens/handler.py"),
    reads_registry=True,
    prune=_LOG_PRUNE,
)
ALL_ROUTES = FunctionDef(
    name=ALL_ROUTES_NAME,
    handler="lens.handler.lambda_handler",
    requirements=TASK_ROOT / "requirements.txt",
    description="Every route in one function (stages deployed before the split)",
    uses_gemini=True,
)

FUNCTIONS: tuple[FunctionDef, ...] = (ANALYZE, MODELS)


def get_function(name: str) -> FunctionDef:
    """The catalog entry called `name` (`all` is the all-routes function); KeyError if none."""
    for fn in (*FUNCTIONS, ALL_ROUTES):
        if fn.name == name:
            return fn
    raise KeyError(name)
