"""A real PostgreSQL for the suite: Debian's ``postgresql`` binaries, one server per test session (per xdist
worker), started in a temporary folder and listening on 127.0.0.1 and a Unix socket in that folder; each
test gets a fresh database of its own.

initdb and postgres refuse to run as root, so a root suite runs them as ``nobody``. The port is one that
was free a moment ago, tried again on another when something took it first (``ports.on_free_port``).
Connections over TCP need the password (scram-sha-256), given as broadsheet is given it: in
``BROADSHEET_DATABASE_PASSWORD``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .installed import missing
from .ports import HOST, PortTaken, on_free_port

USER = "broadsheet"
PASSWORD = "test-only-database-password"  # a throw-away server's
START_SECONDS = 30
_databases = itertools.count(1)


@dataclass
class Server:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> str:
        """The URL broadsheet is configured with (no password: it comes from the environment)."""
        return f"postgresql://{USER}@{HOST}:{self.port}/{database}"

    def admin(self):  # type: ignore[no-untyped-def]
        """A superuser connection over the Unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.folder), port=self.port, user=USER, dbname="postgres", autocommit=True)

    def create_database(self) -> str:
        name = f"test_{os.getpid()}_{next(_databases)}"
        with self.admin() as db:
            # FILE_COPY: template0's few files copied, not written through the WAL (PostgreSQL 15's default,
            # several times slower for a database this small); the checkpoint it costs is cheap without fsync.
            strategy = " STRATEGY FILE_COPY" if db.info.server_version >= 150000 else ""
            db.execute(f'CREATE DATABASE "{name}" TEMPLATE template0{strategy}')
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian: /usr/lib/postgresql/<version>/bin)."""
    found = [
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if (folder / "initdb").is_file() and (folder / "postgres").is_file()
    ]
    if not found:
        return None
    return max(found, key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0)


def start() -> Server:
    """initdb into a new temporary folder and start postgres there (fails, or skips, when not installed)."""
    bin_folder = binaries()
    if bin_folder is None:
        missing("PostgreSQL", "apt-get install postgresql, or make install-test")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg", "pip install -e '.[test]'")
    uid, gid = _owner()
    folder = Path(tempfile.mkdtemp(prefix="broadsheet-pg-", dir=_reachable_temp()))
    os.chown(folder, uid, gid)
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    os.chown(password_file, uid, gid)
    as_owner = _as(uid, gid)
    subprocess.run(
        [str(bin_folder / "initdb"), "-D", str(folder / "data"), "-U", USER, f"--pwfile={password_file}",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
        check=True, capture_output=True, preexec_fn=as_owner, cwd=folder, env=_environment(),
    )  # fmt: skip
    return on_free_port(lambda port: _run(bin_folder, folder, port))


def _run(bin_folder: Path, folder: Path, port: int) -> Server:
    uid, gid = _owner()
    log = folder / f"postgres-{port}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(bin_folder / "postgres"), "-D", str(folder / "data"), "-p", str(port), "-k", str(folder),
             "-c", f"listen_addresses={HOST}", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=100"],
            stdout=output, stderr=subprocess.STDOUT, preexec_fn=_as(uid, gid), cwd=folder, env=_environment(),
        )  # fmt: skip
    server = Server(folder, port, process)
    deadline = time.monotonic() + START_SECONDS
    import psycopg

    while True:
        if process.poll() is not None:
            text = log.read_text(encoding="utf-8", errors="replace")
            if "could not bind" in text or "in use" in text:
                raise PortTaken(text)
            raise RuntimeError(f"postgres did not start:\n{text}")
        try:
            server.admin().close()
            return server
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"postgres did not answer in {START_SECONDS} s") from None
            time.sleep(0.05)


def _owner() -> tuple[int, int]:
    """Who runs the server: this user, or ``nobody`` when the suite runs as root."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _as(uid: int, gid: int):  # type: ignore[no-untyped-def]
    def switch() -> None:
        if os.geteuid() != uid:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

    return switch


def _environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": "/"}


def _reachable_temp() -> str:
    """The temporary folder, when every folder above it lets others through (the server runs as nobody)."""
    folder = Path(tempfile.gettempdir()).resolve()
    if all(part.stat().st_mode & 0o001 for part in [folder, *folder.parents]):
        return str(folder)
    return "/tmp"  # noqa: S108


def fresh_database(server: Server) -> Iterator[str]:
    """A new empty database's URL for one test, dropped afterwards (with the pools that reached it)."""
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        from broadsheet.data.db.postgres import close_pools

        close_pools()
        server.drop_database(name)
