"""Real PostgreSQL and MariaDB servers for the tests, from Debian's packages.

Each server runs from a fresh data directory in a temporary directory, listens on a free
127.0.0.1 port, and is stopped (and its directory removed) by `stop()`. initdb and
mariadbd refuse to run as root, and CI runs as root: as root the servers run as the
unprivileged account the Debian package created (`postgres`, `mysql`) through
`runuser -u`; as anyone else, as that user.

A missing server binary is an error, not a skip (as for chromium): .ci/run installs
`postgresql` and `mariadb-server`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

POSTGRES_ROOT = Path("/usr/lib/postgresql")
MARIADBD = Path("/usr/sbin/mariadbd")
MARIADB_INSTALL_DB = Path("/usr/bin/mariadb-install-db")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class ServerMissing(RuntimeError):
    """A database server binary is not installed."""


def postgres_bin() -> Path:
    """The bin directory of the newest PostgreSQL Debian's package installed."""
    versions = sorted(
        (p for p in POSTGRES_ROOT.glob("*/bin") if (p / "postgres").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not versions:
        raise ServerMissing(
            f"PostgreSQL is not installed (no {POSTGRES_ROOT}/<version>/bin/postgres):"
            " apt-get install postgresql (.ci/run does)"
        )
    return versions[-1]


def _run_as(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


def _service_user(name: str) -> str | None:
    """The account to run a server as: `name` when we are root, else nobody else."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise ServerMissing(
            f"there is no {name!r} user to run the server as (the Debian package creates it)"
        ) from None
    return name


def _workdir(user: str | None) -> Path:
    # Not under pytest's tmp_path: that is private to root, and the server's user must
    # reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="scarab-db-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


def _wait_for(check: Any, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start:\n{log.read_text(errors='replace')}")
        try:
            check()
            return
        except Exception as exc:  # not accepting connections yet
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{what} did not accept connections in {START_TIMEOUT_S}s: {last}")


@dataclass
class DatabaseServer:
    """A running server: `url(database)` is a SQLAlchemy URL with user and password."""

    engine: str  # "postgresql" or "mariadb"
    port: int
    user: str
    password: str
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    databases: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        scheme = "postgresql+pg8000" if self.engine == "postgresql" else "mysql+pymysql"
        return f"{scheme}://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database's URL (dropped by stop())."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        self._admin(f"CREATE DATABASE {name}")
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        self._admin(f"DROP DATABASE IF EXISTS {name}")

    def _admin(self, statement: str) -> None:
        if self.engine == "postgresql":
            import pg8000

            conn = pg8000.connect(
                user=self.user, password=self.password, host="127.0.0.1", port=self.port,
                database="postgres", timeout=10,
            )  # fmt: skip
            conn.autocommit = True
        else:
            import pymysql

            conn = pymysql.connect(
                user=self.user, password=self.password, host="127.0.0.1", port=self.port,
                connect_timeout=10, autocommit=True,
            )  # fmt: skip
        try:
            cursor = conn.cursor()
            cursor.execute(statement)
        finally:
            conn.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            pid = self._server_pid()
            # runuser forwards SIGTERM to the server, but the server's own pid is surer:
            # PostgreSQL's SIGTERM is a "smart" shutdown, SIGINT a fast one.
            sig = signal.SIGINT if self.engine == "postgresql" else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid or process.pid, sig)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid or process.pid, signal.SIGKILL)
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _server_pid(self) -> int | None:
        name = "data/postmaster.pid" if self.engine == "postgresql" else "server.pid"
        try:
            return int((self.workdir / name).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def start_postgres() -> DatabaseServer:
    """initdb into a temporary directory, then postgres on a free port."""
    bin_dir = postgres_bin()
    user = _service_user("postgres")
    root = _workdir(user)
    password = secrets.token_hex(12)
    server = DatabaseServer("postgresql", free_port(), "scarab", password, root)
    try:
        pwfile = root / "pwfile"
        pwfile.write_text(password)
        if user:
            shutil.chown(pwfile, user)
        log = root / "server.log"
        subprocess.run(
            [
                *_run_as(user), str(bin_dir / "initdb"), "-D", str(root / "data"),
                "-U", "scarab", f"--pwfile={pwfile}", "--auth=scram-sha-256",
                "--encoding=UTF8", "--locale=C", "--no-sync",
            ],
            check=True, capture_output=True, timeout=START_TIMEOUT_S,
        )  # fmt: skip
        pwfile.unlink()
        with log.open("wb") as out:
            server.process = subprocess.Popen(
                [
                    *_run_as(user), str(bin_dir / "postgres"), "-D", str(root / "data"),
                    "-p", str(server.port), "-c", "listen_addresses=127.0.0.1",
                    "-c", f"unix_socket_directories={root}", "-c", "fsync=off",
                    "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                ],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

        def check() -> None:
            import pg8000

            pg8000.connect(
                user="scarab", password=password, host="127.0.0.1", port=server.port,
                database="postgres", timeout=2,
            ).close()  # fmt: skip

        _wait_for(check, server.process, log, "postgres")
    except BaseException:
        server.stop()
        raise
    return server


def start_mariadb() -> DatabaseServer:
    """mariadb-install-db into a temporary directory, then mariadbd on a free port."""
    for binary in (MARIADBD, MARIADB_INSTALL_DB):
        if not binary.is_file():
            raise ServerMissing(
                f"MariaDB is not installed (no {binary}): apt-get install mariadb-server"
                " (.ci/run does)"
            )
    user = _service_user("mysql")
    root = _workdir(user)
    password = secrets.token_hex(12)
    server = DatabaseServer("mariadb", free_port(), "scarab", password, root)
    socket = root / "mysqld.sock"
    options = [
        "--no-defaults", f"--datadir={root / 'data'}", f"--socket={socket}",
        f"--pid-file={root / 'server.pid'}", f"--port={server.port}",
        "--bind-address=127.0.0.1", "--skip-name-resolve", "--skip-log-bin",
        "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=2", "--character-set-server=utf8mb4",
    ]  # fmt: skip
    try:
        subprocess.run(
            [
                *_run_as(user), str(MARIADB_INSTALL_DB), *options[:2],
                "--auth-root-authentication-method=socket", "--skip-test-db",
            ],
            check=True, capture_output=True, timeout=START_TIMEOUT_S * 2,
        )  # fmt: skip
        log = root / "server.log"
        with log.open("wb") as out:
            server.process = subprocess.Popen(
                [*_run_as(user), str(MARIADBD), *options], stdout=out, stderr=subprocess.STDOUT
            )
        import pymysql

        def check() -> None:
            # The account the tests use, made through the socket by the OS user that ran
            # the install (unix_socket authentication: root is root@localhost).
            conn = pymysql.connect(
                unix_socket=str(socket), user=pwd.getpwuid(os.geteuid()).pw_name,
                connect_timeout=2, autocommit=True,
            )  # fmt: skip
            try:
                cursor = conn.cursor()
                cursor.execute(
                    "CREATE USER IF NOT EXISTS 'scarab'@'%%' IDENTIFIED BY %s", (password,)
                )
                cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'scarab'@'%'")
            finally:
                conn.close()

        _wait_for(check, server.process, log, "mariadbd")
    except BaseException:
        server.stop()
        raise
    return server
