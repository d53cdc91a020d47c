"""Run a plan's steps in order, keeping the state record current as ids appear."""

from __future__ import annotations

from collections.abc import Callable

from scarab.aws import explain
from scarab.deploy.plan import Context, Step
from scarab.errors import ScarabError


def execute(
    steps: list[Step],
    ctx: Context,
    *,
    progress: Callable[[str], None] | None = None,
    after_step: Callable[[Context], None] | None = None,
) -> None:
    """Run every step; on failure, say which step failed and that a re-run resumes."""
    for i, step in enumerate(steps, 1):
        if progress:
            progress(f"[{i}/{len(steps)}] {step.describe()}")
        try:
            step.run(ctx)
        except Exception as exc:
            err = explain(exc)
            failed = ScarabError(
                f"{step.action} {step.resource} failed: {err}\nNothing is left half-done"
                " that a re-run cannot finish: run the same command again."
            )
            raise failed from None
        finally:
            if after_step:
                after_step(ctx)
