"""The stage lock: one mutating scarab command per stage at a time, across machines.

Two locks, taken in this order and released in reverse:

- a local file lock (`fcntl.flock` on `.scarab/[local/]state/<stage>.lock`): two commands
  on one machine; the kernel drops it when the process dies, so it is never stale;
- a lock record in the account, the SSM parameter `/scarab/<app>/<stage>/lock`, created
  with Overwrite=False (ParameterAlreadyExists: held), holding owner, host, pid, command
  and start time as JSON: a laptop and CI deploying the same stage. A record older than
  `[lock] timeout_minutes` is stale (its run crashed) and is taken over, and so is one
  written on this machine by a process that is gone (we hold the file lock, so no live
  scarab in this checkout can own it). The age is the holder's start time, or SSM's
  LastModifiedDate when the record cannot be read.

Taking over is delete-then-create, and SSM has no conditional delete: two runs that judged
the same record stale could each delete the other's fresh record. So a takeover first
claims the stale record with a marker, `/scarab/<app>/<stage>/lock-takeover/<digest of
the stale record>`, created with Overwrite=False after its delete: only one run's create
succeeds; the other learns it lost, puts the winner's record back (it may just have
deleted it) and reports the stage locked.

Read-only commands and dry runs never lock, nor does a deploy with nothing to change; such
a run can only read the record, and `stale_lock_notice` says when a dead run left it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scarab.aws import Aws, aws_errors, call, error_code, explain
from scarab.deploy.state import lock_path
from scarab.errors import ScarabError
from scarab.naming import Names


class StageLocked(ScarabError):
    """Another scarab command is changing the stage (exit 1)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: what `scarab` prints to the one that waits."""

    owner: str
    host: str
    pid: int
    command: str
    started: str  # ISO 8601, UTC
    token: str  # tells this holder's record from a later one

    @classmethod
    def me(cls, command: str) -> Holder:
        try:
            owner = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            owner = os.environ.get("USER", "unknown")
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(owner, socket.gethostname(), os.getpid(), command, now, uuid.uuid4().hex)

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(
                owner=str(data["owner"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                command=str(data.get("command", "scarab")),
                started=str(data["started"]),
                token=str(data.get("token", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def age(self) -> datetime.timedelta | None:
        try:
            started = datetime.datetime.fromisoformat(self.started)
        except ValueError:
            return None
        if started.tzinfo is None:
            started = started.replace(tzinfo=datetime.UTC)
        return datetime.datetime.now(datetime.UTC) - started

    def dead_here(self) -> bool:
        """True when this holder ran on this machine and its process is gone."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # EPERM: alive, someone else's
            return False
        return False

    def describe(self) -> str:
        age = self.age()
        ago = f" ({_minutes(age)} ago)" if age is not None else ""
        return (
            f"'{self.command}' by {self.owner}@{self.host} (pid {self.pid})"
            f" since {self.started}{ago}"
        )


def _minutes(delta: datetime.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return "under a minute" if minutes == 0 else f"{minutes} min"


def lock_parameter(names: Names) -> str:
    """The SSM parameter that holds the stage's lock record."""
    return f"/scarab/{names.app}/{names.stage}/lock"


def takeover_parameter(names: Names, stale: str) -> str:
    """The marker a run creates to claim the takeover of the stale record `stale`."""
    digest = hashlib.sha256(stale.encode()).hexdigest()[:16]
    return f"/scarab/{names.app}/{names.stage}/lock-takeover/{digest}"


def _advice(names: Names, timeout_minutes: int) -> str:
    return (
        " Wait for it to finish and re-run. If that run is dead, 'scarab unlock'"
        f" (or 'scarab deploy --force-unlock') clears the lock {lock_parameter(names)};"
        f" a lock older than {timeout_minutes} min is taken over by itself."
    )


@contextlib.contextmanager
def stage_lock(
    aws: Aws,
    names: Names,
    project_dir: Path,
    *,
    command: str,
    timeout_minutes: int,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold both locks of the stage for the block; StageLocked if someone else does."""
    me = Holder.me(command)
    path = lock_path(project_dir, names.stage, aws.endpoint_url)
    with _file_lock(path, me, names):
        marker = _acquire(aws, names, me, timeout_minutes, force, progress)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # the block's error is the one to report
                _release(aws, names, me, marker)
            raise
        _release(aws, names, me, marker)


class HeldLock:
    """The stage lock kept past the block that took it, until `close()` (or the end of
    a `with HeldLock() as held:`): `deploy --canary` takes it in deploy() and holds it,
    without a gap another run could use, through the bake that follows."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.held = False

    @contextlib.contextmanager
    def take(
        self,
        aws: Aws,
        names: Names,
        project_dir: Path,
        *,
        command: str,
        timeout_minutes: int,
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Iterator[None]:
        """Take the stage lock (if not held yet) for the block and keep it afterwards."""
        if not self.held:
            lock = stage_lock(
                aws, names, project_dir, command=command, timeout_minutes=timeout_minutes,
                force=force, progress=progress,
            )  # fmt: skip
            self._stack.enter_context(lock)
            self.held = True
        yield

    def close(self) -> None:
        """Release the lock (if held)."""
        self.held = False
        self._stack.close()

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.held = False
        self._stack.__exit__(*exc)


@contextlib.contextmanager
def _file_lock(path: Path, me: Holder, names: Names) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        why = "it is a directory" if path.is_dir() else (exc.strerror or type(exc).__name__)
        raise ScarabError(
            f"Cannot open the stage's lock file {path} ({why}). It must be a writable"
            f" file: remove whatever is there (rm -r {path}) or make {path.parent}"
            " writable, and re-run. Nothing was changed."
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = Holder.parse(path.read_text(encoding="utf-8", errors="replace"))
            who = held.describe() if held else "another scarab command"
            raise StageLocked(
                f"Stage {names.stage} is locked on this machine by {who} (lock file {path})."
                " Wait for that command to finish and re-run; the lock goes away with it."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.dump().encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_record(aws: Aws, name: str) -> tuple[str, datetime.datetime | None] | None:
    """The parameter's value and SSM's LastModifiedDate, or None if there is none."""
    try:
        got = call(aws.client("ssm").get_parameter, Name=name)
    except Exception as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    value = str(got["Parameter"]["Value"])
    modified = got["Parameter"].get("LastModifiedDate")
    if not isinstance(modified, datetime.datetime):
        return value, None
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=datetime.UTC)
    return value, modified


def _read(aws: Aws, name: str) -> str | None:
    got = _read_record(aws, name)
    return got[0] if got else None


def _delete(aws: Aws, name: str) -> None:
    try:
        call(aws.client("ssm").delete_parameter, Name=name)
    except Exception as exc:
        if error_code(exc) != "ParameterNotFound":
            raise


def _stale(raw: str, modified: datetime.datetime | None, timeout_minutes: int) -> bool:
    return _why_stale(raw, modified, timeout_minutes) is not None


def _why_stale(raw: str, modified: datetime.datetime | None, timeout_minutes: int) -> str | None:
    """Why the lock record `raw` is stale (a phrase), or None while it may be live."""
    holder = Holder.parse(raw)
    if holder is not None and holder.dead_here():
        return f"its process (pid {holder.pid}) is no longer running on this machine"
    age = holder.age() if holder else None
    if age is None and modified is not None:  # unreadable record: SSM's clock says how old
        age = datetime.datetime.now(datetime.UTC) - modified
    if age is not None and age > datetime.timedelta(minutes=timeout_minutes):
        return (
            f"it is {_minutes(age)} old, older than [lock] timeout_minutes"
            f" ({timeout_minutes} min), so its run most likely crashed"
        )
    return None


def stale_lock_notice(
    aws: Aws, names: Names, project_dir: Path, timeout_minutes: int
) -> str | None:
    """A warning when the stage's lock record is left over from a run that died, or None.

    For a run that has nothing to change and so never takes the lock (an up-to-date
    deploy): a run SIGKILLed after its last call leaves its record, and nothing else would
    say so. Read-only, as such a run must be (the record is removed by 'scarab unlock' or
    `--force-unlock`, or taken over by the next run that changes the stage). None as well
    when the record may belong to a live run, when a scarab command in this checkout
    holds the local lock now (it takes the record over itself), or when the record cannot
    be read: the notice is advice and never fails the command.
    """
    name = lock_parameter(names)
    if _live_here(lock_path(project_dir, names.stage, aws.endpoint_url)):
        return None
    try:
        got = _read_record(aws, name)
    except Exception:
        return None
    if got is None:
        return None
    held, modified = got
    why = _why_stale(held, modified, timeout_minutes)
    if why is None:
        return None
    holder = Holder.parse(held)
    if holder is not None and holder.dead_here():
        # Only this machine can tell the process is gone; elsewhere it looks held.
        until = (
            f" until then (or until it is {timeout_minutes} min old) commands on other"
            " machines find the stage locked"
        )
    else:
        until = " until then the next command that changes the stage takes it over"
    return (
        f"The stage lock {name} is left over from {_who(held)}: {why}. Nothing needed"
        f" changing, so this run left it in place. Remove it with 'scarab unlock';{until}."
    )


def _live_here(path: Path) -> bool:
    """True when the local lock file names a running process: a scarab command in this
    checkout holds the stage now. Read without locking, so as not to get in its way."""
    try:
        holder = Holder.parse(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return False
    if holder is None or holder.host != socket.gethostname():
        return False
    return not holder.dead_here()


def _acquire(
    aws: Aws,
    names: Names,
    me: Holder,
    timeout_minutes: int,
    force: bool,
    progress: Callable[[str], None] | None,
) -> str | None:
    """Take the lock record; returns the takeover marker to remove on release, if any."""
    name = lock_parameter(names)
    try:
        if force:
            held = _read(aws, name)
            if held is not None:
                _delete(aws, name)
                if progress:
                    progress(f"removed the lock {name} ({_who(held)}): --force-unlock")
        for _ in range(3):
            if _create(aws, names, name, me.dump()):
                return None
            got = _read_record(aws, name)
            if got is None:
                continue  # released between our create and our read: try again
            held, modified = got
            if not _stale(held, modified, timeout_minutes):
                raise StageLocked(
                    f"Stage {names.stage} is locked by {_who(held)}."
                    + _advice(names, timeout_minutes)
                )
            # Take over only the record we judged stale, not one a third run just wrote.
            if _read(aws, name) != held:
                continue
            _delete(aws, name)
            marker = takeover_parameter(names, held)
            if not _create(aws, names, marker, me.dump()):
                _lost_takeover(aws, names, name, marker)
                raise StageLocked(
                    f"Stage {names.stage} is locked: another run took over the stale lock"
                    f" {name} at the same time." + _advice(names, timeout_minutes)
                )
            if progress:
                progress(f"took over a stale lock: {_who(held)}")
            if _create(aws, names, name, me.dump()):
                return marker
            _delete(aws, marker)
    except ScarabError:
        raise
    except Exception as exc:
        raise ScarabError(
            f"Could not take the stage lock {name}: {explain(exc)}\nNothing was changed:"
            " run the same command again."
        ) from None
    raise StageLocked(
        f"Stage {names.stage} is locked: its lock {name} keeps changing hands."
        + _advice(names, timeout_minutes)
    )


def _lost_takeover(aws: Aws, names: Names, name: str, marker: str) -> None:
    """Another run claimed the takeover first, and our delete may have removed the record
    it had just written: put it back (unless someone holds the lock by now)."""
    winner = _read(aws, marker)
    if winner is not None:
        _create(aws, names, name, winner)


def _who(raw: str) -> str:
    holder = Holder.parse(raw)
    return holder.describe() if holder else "a record scarab cannot read"


def _create(aws: Aws, names: Names, name: str, value: str) -> bool:
    """Create the parameter `name` (the lock record or a takeover marker); False if it
    exists (someone holds the lock, or claimed the takeover)."""
    params: dict[str, Any] = {
        "Name": name,
        "Value": value,
        "Type": "String",
        "Overwrite": False,
        "Description": f"Held while a scarab command changes {names.base}; see 'scarab unlock'",
        "Tags": [{"Key": k, "Value": v} for k, v in names.tags.items()],
    }
    try:
        call(aws.client("ssm").put_parameter, **params)
    except Exception as exc:
        if error_code(exc) == "ParameterAlreadyExists":
            return False
        raise
    return True


def _release(aws: Aws, names: Names, me: Holder, marker: str | None = None) -> None:
    """Delete the lock record if it is still ours (a stale takeover made it someone else's),
    and the takeover marker this run created, if any."""
    name = lock_parameter(names)
    last: Exception | None = None
    for _ in range(2):  # one retry: a lock left behind blocks the stage for the timeout
        try:
            if marker is not None:
                _delete(aws, marker)
                marker = None
            held = _read(aws, name)
            holder = Holder.parse(held) if held is not None else None
            if holder is None or holder.token != me.token:
                return
            _delete(aws, name)
            return
        except Exception as exc:
            last = exc
    raise ScarabError(
        f"The command finished, but its stage lock {name} could not be released"
        f" ({explain(last) if last else 'unknown error'}). Run 'scarab unlock' before the"
        " next deploy."
    )


def unlock(aws: Aws, names: Names) -> str | None:
    """Remove the stage's lock record, whoever holds it; returns who held it (or None)."""
    name = lock_parameter(names)
    with aws_errors():
        held = _read(aws, name)
        if held is None:
            return None
        _delete(aws, name)
    return _who(held)
