"""`scarab models`: the stage's model registry (a DynamoDB table) and its artifacts (S3).

convert.py turns the file a user names (ONNX, or a scikit-learn estimator saved with
joblib or pickle) into checked ONNX bytes plus what the registry records about them;
registry.py writes and reads the table and bucket (push, list, promote, rollback,
split, rm). The item layout is the function's (lens.predict.sources parses it): the
records written here are validated with the function's own parser before any write.
"""

from __future__ import annotations

import sys
from pathlib import Path

from scarab.errors import EXIT_USAGE, ScarabError
from scarab.functions import TASK_ROOT


class Refused(ScarabError):
    """The command will not do what was asked (bad file, existing version, live version):
    exit 2, the message says why and what to do."""

    exit_code = EXIT_USAGE


def use_function_code(project_dir: Path) -> None:
    """Make the project's function package (lambda/lens) importable: the registry's item
    format, schemas and kinds are the function's, so they are read from its code (as
    training/train_models.py does), never restated here."""
    try:
        import lens  # noqa: F401
    except ImportError:
        sys.path.insert(0, str((project_dir / TASK_ROOT).resolve()))
