"""The record a running `scarab serve` leaves in `.scarab/local/serve.json`.

`{"url", "api_url", "pid"}`: where serve answers (its web client at `url`, the stage's API
at `api_url`) and the process that answers. It is written once serve is ready and removed
when it stops; a record left by a serve that was killed names a dead process, and `read`
treats it, like a missing or unreadable file, as no serve at all.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from scarab import layout


@dataclass(frozen=True)
class ServeRecord:
    url: str
    api_url: str
    pid: int

    @staticmethod
    def path(project_dir: Path) -> Path:
        return project_dir / layout.SERVE_RECORD

    def write(self, project_dir: Path) -> None:
        """Write the record atomically (a reader never sees half of it)."""
        record = self.path(project_dir)
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(record)

    @classmethod
    def read(cls, project_dir: Path) -> ServeRecord | None:
        """The record of a serve that is still running; None when the file is missing,
        unreadable, not the expected shape, or names a process that is gone."""
        try:
            data = json.loads(cls.path(project_dir).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        url, api_url, pid = data.get("url"), data.get("api_url"), data.get("pid")
        if not (isinstance(url, str) and url and isinstance(api_url, str) and api_url):
            return None
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None  # pid 0 or below would name a process group, not serve
        if not _alive(pid):
            return None
        return cls(url=url, api_url=api_url, pid=pid)

    def remove(self, project_dir: Path) -> None:
        """Remove the file if it is still this record (another serve of the project started
        since may have replaced it)."""
        record = self.path(project_dir)
        try:
            if json.loads(record.read_text()) != asdict(self):
                return
        except (OSError, ValueError):
            return
        with contextlib.suppress(FileNotFoundError):
            record.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by someone else
    except (OSError, OverflowError):
        return False
    return True
