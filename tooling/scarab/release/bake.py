"""The canary bake: after a deploy gave a new version a share of `live`'s traffic, watch
the stage's alarms for a while, then promote the new version or roll it back.

- any watched alarm in ALARM: roll back (the alias to the previous version, no weights)
  and say which alarm and its StateReason;
- the bake is over and none is in ALARM: promote (the alias to the new version, no
  weights);
- Ctrl-C or SIGTERM during the bake, or a failure while watching: roll back, then
  re-raise (BakeInterrupted for a signal, so the command exits 130).

The promotion and the roll back touch only an alias still as the deploy set it: one
someone moved meanwhile (`scarab rollback`, `scarab split`) is left as they set it and
reported in `skipped`. Signals wait while aliases move, and are not lost: one that
arrived meanwhile raises BakeInterrupted once the move is complete, saying which.

The bake reads alarm states (describe_alarms); it never evaluates metrics itself: AWS
does that (and `scarab serve` for the local emulator). The clock and the sleep are
parameters so that the loop can be tested without waiting.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from scarab.aws import Aws
from scarab.deploy import weights as w
from scarab.deploy.guards import Alarm, firing
from scarab.deploy.release_models import LIVE_ALIAS
from scarab.errors import ConfigError, ScarabError
from scarab.functions import FUNCTIONS
from scarab.naming import Names
from scarab.release.alias import Function, Move, Routing, move, read_function

# How often the bake reads the alarms, in seconds (CloudWatch evaluates once a minute).
DEFAULT_POLL_SECONDS = 5.0
# The bake of `scarab deploy --canary` when --bake is not given.
DEFAULT_BAKE_SECONDS = 300.0
# A bake must end this long before the stage lock would look stale ([lock]
# timeout_minutes): the deploy before it, and the promotion after it, run under the lock.
LOCK_MARGIN_MINUTES = 5
# The first segment of an alarm name after `<app>-<stage>-`: a function key or the API.
_API_ALARMS = "api"


class CanaryRelease(Protocol):
    """What the bake needs of one function's release (the deploy core's Release)."""

    @property
    def function(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def previous(self) -> str | None: ...
    @property
    def published(self) -> str | None: ...
    @property
    def canary_weight(self) -> float | None: ...


@dataclass(frozen=True)
class Release:
    """One function's release by a deploy: `published` got `canary_weight` of the traffic,
    `previous` the rest. The same fields as the deploy core's Release (whichever is
    passed satisfies CanaryRelease)."""

    function: str
    key: str
    previous: str | None
    published: str | None
    canary_weight: float | None


@dataclass
class BakeOutcome:
    """How a bake ended: promoted, or rolled back because of `alarm`."""

    promoted: bool
    moves: list[Move] = field(default_factory=list)
    alarm: Alarm | None = None
    watched: list[str] = field(default_factory=list)
    # A release whose alias someone moved during the bake: left as they set it.
    skipped: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        if self.alarm is None:
            return ""
        return f"alarm {self.alarm.name} is in ALARM: {self.alarm.reason}"


class BakeInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the bake; `moves` rolled the canaries back, or, when
    `promoted`, the signal came while the bake was promoting them and the promotion
    completed. `skipped`: functions whose alias someone moved, left as it is."""

    def __init__(
        self,
        signal_name: str,
        moves: list[Move],
        skipped: list[str] | None = None,
        *,
        promoted: bool = False,
        reason: str = "",
    ) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.moves = moves
        self.skipped = skipped or []
        self.promoted = promoted
        self.reason = reason  # why it was rolled back, when an alarm did it

    @property
    def what(self) -> str:
        """What happened to the canary, for the command's last line."""
        name = self.signal_name
        if self.promoted:
            return f"{name} came while promoting the canary: the promotion completed"
        if self.reason:
            return f"{name} came while rolling back ({self.reason}): the roll back completed"
        return f"{name}: the canary was rolled back"


def canaries(releases: Sequence[CanaryRelease]) -> list[CanaryRelease]:
    """The releases that are canaries: a new version with a weight and a previous one."""
    return [
        r
        for r in releases
        if r.canary_weight is not None and r.published is not None and r.previous is not None
    ]


def stage_alarm_names(aws: Aws, names: Names) -> Callable[[], list[str]]:
    """The default alarms to watch: the stage's `<app>-<stage>-<function key or api>-...`.

    The prefix alone would also match a stage whose name continues this one's
    (`dev` and `dev-b`): only names whose next segment is a function key or `api` count.
    """
    prefix = f"{names.base}-"
    first = {fn.name for fn in FUNCTIONS} | {_API_ALARMS}

    def read() -> list[str]:
        found: list[str] = []
        token: str | None = None
        cw = aws.client("cloudwatch")
        while True:
            page = cw.describe_alarms(
                AlarmNamePrefix=prefix, **({"NextToken": token} if token else {})
            )
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                name = str(alarm["AlarmName"])
                if name.removeprefix(prefix).split("-", 1)[0] in first:
                    found.append(name)
            token = page.get("NextToken")
            if not token:
                return sorted(set(found))

    return read


@dataclass(frozen=True)
class _Canary:
    release: CanaryRelease
    function: Function

    @property
    def previous(self) -> str:
        assert self.release.previous is not None  # canaries() keeps only those
        return self.release.previous

    @property
    def published(self) -> str:
        assert self.release.published is not None
        return self.release.published

    def is_untouched(self, now: Routing | None) -> bool:
        """Whether the alias is still the canary the deploy set (nobody moved it, nor
        changed its weight: `scarab split` on the same version is someone's too)."""
        weight = self.release.canary_weight or 0.0
        return (
            now is not None
            and now.version == self.previous
            and set(now.weights) == {self.published}
            and math.isclose(now.weights[self.published], weight, abs_tol=1e-9)
        )


def _open(aws: Aws, names: Names, release: CanaryRelease) -> _Canary:
    fn = read_function(aws, names.function(release.key))
    canary = None if fn is None else _Canary(release, fn)
    if canary is None or not canary.is_untouched(canary.function.routing):
        shown = "no alias" if fn is None else Move(fn, fn.routing, fn.routing).describe(fn.routing)
        raise ScarabError(
            f"{release.function}'s '{LIVE_ALIAS}' alias is not a canary of version"
            f" {release.published} over {release.previous} (it is: {shown}); nothing to bake."
        )
    return canary


def bake(
    aws: Aws,
    names: Names,
    releases: Sequence[CanaryRelease],
    *,
    seconds: float,
    alarm_names: Callable[[], list[str]],
    poll: float = DEFAULT_POLL_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
) -> BakeOutcome:
    """Watch `alarm_names()` for `seconds`, then promote every canary of `releases`, or
    roll them all back at the first alarm in ALARM (see the module docstring)."""
    say = progress or (lambda _m: None)
    seconds = check_seconds(seconds)
    pending = [_open(aws, names, r) for r in canaries(releases)]
    if not pending:
        return BakeOutcome(promoted=False)
    watched: list[str] = []
    try:  # from here on, an interrupt rolls the canary back
        with _signals_interrupt():
            watched = alarm_names()
            _announce(say, pending, seconds, watched)
            alarm = _watch(aws, watched, seconds, poll, clock, sleep)
    except KeyboardInterrupt as exc:
        name = str(exc) or "SIGINT"
        say(f"{name}: rolling the canary back")
        moves, skipped, _ = _finish(aws, pending, promote=False)
        raise BakeInterrupted(name, moves, skipped) from None
    except BaseException:
        say("the bake failed: rolling the canary back")
        _finish(aws, pending, promote=False)
        raise  # the failure is what to report; the command stops either way
    if alarm is not None:
        say(f"alarm {alarm.name} is in ALARM: rolling the canary back")
        outcome = BakeOutcome(False, alarm=alarm, watched=watched)
        outcome.moves, outcome.skipped, signalled = _finish(aws, pending, promote=False)
        if signalled:
            raise BakeInterrupted(signalled, outcome.moves, outcome.skipped, reason=outcome.reason)
        return outcome
    moves, skipped, signalled = _finish(aws, pending, promote=True)
    if signalled:
        raise BakeInterrupted(signalled, moves, skipped, promoted=True)
    return BakeOutcome(True, moves, None, watched, skipped)


def roll_back(
    aws: Aws, names: Names, releases: Sequence[CanaryRelease]
) -> tuple[list[Move], list[str]]:
    """Roll back the canaries of `releases` whose alias is still as the deploy set it:
    for an interrupt after the deploy started them and before the bake watched them.
    Returns the moves and the functions left as someone else set them."""
    pending: list[_Canary] = []
    gone: list[str] = []
    for r in canaries(releases):
        fn = read_function(aws, names.function(r.key))
        if fn is None:
            gone.append(r.function)
        else:
            pending.append(_Canary(r, fn))
    moves, skipped, _ = _finish(aws, pending, promote=False)
    return moves, gone + skipped


def _announce(
    say: Callable[[str], None], pending: list[_Canary], seconds: float, watched: list[str]
) -> None:
    for c in pending:
        pct = w.percent_of(c.release.canary_weight or 0.0)
        what = f"canary: {c.release.key} version {c.published}"
        say(f"{what} gets {pct:g}% (live stays on {c.previous})")
    shown = f": {', '.join(watched)}" if watched else " (none: nothing can stop the promotion)"
    say(f"baking {seconds:g} s, watching {len(watched)} alarms{shown}")


def _watch(
    aws: Aws,
    watched: list[str],
    seconds: float,
    poll: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> Alarm | None:
    """Poll until an alarm fires (returned) or `seconds` are over (None); the states are
    read once more at the end, so a bake of 0 seconds still looks once."""
    deadline = clock() + seconds
    while True:
        alarm = firing(aws, watched) if watched else None
        if alarm is not None:
            return alarm
        left = deadline - clock()
        if left <= 0:
            return None
        sleep(min(poll, left))


def _finish(
    aws: Aws, pending: list[_Canary], *, promote: bool
) -> tuple[list[Move], list[str], str | None]:
    """Every canary's alias to its new version (`promote`) or back to its previous one,
    no weights, unless someone moved it meanwhile (skipped: theirs now). Signals wait
    until every alias is moved; returns the moves, the skipped functions and the name
    of a signal that came meanwhile (None: none did)."""
    moves: list[Move] = []
    skipped: list[str] = []
    with _deferred_signals() as caught:
        for c in pending:
            fn = read_function(aws, c.function.names)
            if fn is None or not c.is_untouched(fn.routing):
                skipped.append(c.release.function)
                continue
            moves.append(move(aws, fn, Routing(c.published if promote else c.previous)))
    return moves, skipped, caught[0] if caught else None


class _Signalled(KeyboardInterrupt):
    """SIGTERM during a bake run outside the CLI (which installs its own handler)."""


@contextlib.contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM interrupts the bake like Ctrl-C when nothing else handles it (the CLI
    already turns it into its Terminated)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signal.SIGTERM)
    if old not in (signal.SIG_DFL, None):
        yield
        return

    def raise_(signum: int, _frame: Any) -> None:
        raise _Signalled(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, raise_)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[list[str]]:
    """Ctrl-C and SIGTERM wait while the alias is being moved: a second Ctrl-C must not
    leave one function rolled back and the other still split. The names of the signals
    that came meanwhile are in the yielded list, for the caller to act on afterwards."""
    caught: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in sigs}

    def note(signum: int, _frame: Any) -> None:
        caught.append(signal.Signals(signum).name)

    for s in sigs:
        signal.signal(s, note)
    try:
        yield caught
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def check_seconds(value: str | float) -> float:
    """A bake length from `--bake` (seconds, a finite number, 0 or more)."""
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(
            f"--bake must be a number of seconds such as 300, not {value!r}."
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"--bake must be 0 seconds or more, not {value}.")
    return seconds


def check_fits_lock(seconds: float, timeout_minutes: int) -> None:
    """Refuse a bake the stage lock would not outlast: after `[lock] timeout_minutes`
    another run takes the lock over as stale, and could deploy in the middle of it."""
    limit = timeout_minutes - LOCK_MARGIN_MINUTES
    if seconds <= limit * 60:
        return
    most = f"at most {limit * 60} s" if limit > 0 else "none at all"
    raise ConfigError(
        f"--bake {seconds:g} s is too long for the stage lock: [lock] timeout_minutes is"
        f" {timeout_minutes} min, after which another run takes the lock over as stale,"
        f" and a bake must end {LOCK_MARGIN_MINUTES} min before that ({most}). Give a"
        f" shorter --bake, or raise timeout_minutes in scarab.toml's [lock] to at least"
        f" {math.ceil(seconds / 60) + LOCK_MARGIN_MINUTES}. Nothing was changed."
    )
