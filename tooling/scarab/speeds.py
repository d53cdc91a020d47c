"""The speed tiers the API's POST /analyze accepts, for `scarab invoke`.

The function spells them in lens.settings (TIERS, DEFAULT_TIER); the CLI cannot import
lens (it is the deployed function's package, with the function's dependencies), so this
is the CLI's one copy. tests/deploy/test_tidy.py checks that it, lens, the web client's
options and the OpenAPI document's enum agree.
"""

from __future__ import annotations

SPEEDS: tuple[str, ...] = ("regular", "fast", "super-fast")
DEFAULT_SPEED = "fast"
# "regular, fast or super-fast", for help texts and errors.
SPEEDS_SPOKEN = f"{', '.join(SPEEDS[:-1])} or {SPEEDS[-1]}"
