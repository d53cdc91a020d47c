"""Review 9: the README's `scarab models` block cannot drift from what
test_readme_models checks: a comment claiming something else, a command dropped from
the sequence, or one added without a check is noticed."""

from __future__ import annotations

from tests.serve.test_readme import README
from tests.serve.test_readme_models import drift, models_block


def _drifted(old: str, new: str) -> list[str]:
    text = README.read_text()
    assert old in text
    return drift(models_block(text.replace(old, new, 1)))


def test_the_readme_block_is_what_the_checks_verify() -> None:
    assert drift(models_block(README.read_text())) == []


def test_a_changed_comment_is_noticed() -> None:
    assert _drifted("# 2 answers 30 % of requests", "# 2 answers 50 % of requests")
    assert _drifted("# refused: 1 is live", "# removes 1 and its artifact")


def test_a_dropped_or_unchecked_command_is_noticed() -> None:
    assert _drifted("scarab models rm churn 1                # refused: 1 is live\n", "")
    extra = "scarab models rollback churn            # live -> the previous live version, 1\n"
    assert _drifted(extra, extra + "scarab models promote churn 9   # live -> 9\n")
