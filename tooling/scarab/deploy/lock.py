"""The stage lock: one mutating scarab command per stage at a time, across machines.

Two locks, taken in this order and released in reverse:

- a local file lock (`fcntl.flock` on `.scarab/[local/]state/<stage>.lock`): two commands
  on one machine; the kernel drops it when the process dies, so it is never stale;
- a lock record in the account, the SSM parameter `/scarab/<app>/<stage>/lock`, created
  with Overwrite=False (ParameterAlreadyExists: held), holding owner, host, pid, command
  and start time as JSON: a laptop and CI deploying the same stage. A record older than
  `[lock] timeout_minutes` is stale (its run crashed) and is taken over.

Read-only commands and dry runs never lock.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import getpass
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scarab.aws import Aws, call, error_code, explain
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
        _acquire(aws, names, me, timeout_minutes, force, progress)
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):  # the block's error is the one to report
                _release(aws, names, me)
            raise
        _release(aws, names, me)


@contextlib.contextmanager
def _file_lock(path: Path, me: Holder, names: Names) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


def _read(aws: Aws, name: str) -> str | None:
    try:
        got = call(aws.client("ssm").get_parameter, Name=name)
    except Exception as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    return str(got["Parameter"]["Value"])


def _delete(aws: Aws, name: str) -> None:
    try:
        call(aws.client("ssm").delete_parameter, Name=name)
    except Exception as exc:
        if error_code(exc) != "ParameterNotFound":
            raise


def _acquire(
    aws: Aws,
    names: Names,
    me: Holder,
    timeout_minutes: int,
    force: bool,
    progress: Callable[[str], None] | None,
) -> None:
    name = lock_parameter(names)
    try:
        if force:
            held = _read(aws, name)
            if held is not None:
                _delete(aws, name)
                if progress:
                    progress(f"removed the lock {name} ({_who(held)}): --force-unlock")
        for _ in range(3):
            if _create(aws, names, name, me):
                return
            held = _read(aws, name)
            if held is None:
                continue  # released between our create and our read: try again
            holder = Holder.parse(held)
            age = holder.age() if holder else None
            stale = age is not None and age > datetime.timedelta(minutes=timeout_minutes)
            if not stale:
                raise StageLocked(
                    f"Stage {names.stage} is locked by {_who(held)}."
                    + _advice(names, timeout_minutes)
                )
            # Take over only the record we judged stale, not one a third run just wrote.
            if _read(aws, name) == held:
                _delete(aws, name)
                if progress:
                    progress(f"took over a stale lock: {_who(held)}")
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


def _who(raw: str) -> str:
    holder = Holder.parse(raw)
    return holder.describe() if holder else "a record scarab cannot read"


def _create(aws: Aws, names: Names, name: str, me: Holder) -> bool:
    """Create the lock record; False if one exists (someone holds the lock)."""
    params: dict[str, Any] = {
        "Name": name,
        "Value": me.dump(),
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


def _release(aws: Aws, names: Names, me: Holder) -> None:
    """Delete the lock record if it is still ours (a stale takeover made it someone else's)."""
    name = lock_parameter(names)
    last: Exception | None = None
    for _ in range(2):  # one retry: a lock left behind blocks the stage for the timeout
        try:
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
    try:
        held = _read(aws, name)
        if held is None:
            return None
        _delete(aws, name)
    except Exception as exc:
        raise explain(exc) from None
    return _who(held)
