"""A private PostgreSQL cluster for the test suite (started when none is configured)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: run `scripts/test.sh`, which installs them "
        "(Debian package `postgresql`), or set BAROMETRE_TEST_POSTGRES_URL."
    )


@dataclass
class PrivateCluster:
    directory: Path
    port: int
    bindir: Path
    as_user: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_user:
            # initdb and postgres refuse to run as root: run them as the postgres user.
            command = ["runuser", "-u", self.as_user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", str(self.directory / "data"), "-m", "immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_private_cluster() -> PrivateCluster:
    bindir = _bindir()
    as_user = None
    if os.geteuid() == 0:
        as_user = "postgres"
        pwd.getpwnam(as_user)  # the Debian package creates this user
    directory = Path(tempfile.mkdtemp(prefix="barometre-pg-"))
    if as_user:
        shutil.chown(directory, user=as_user)
    port = free_port()
    cluster = PrivateCluster(directory=directory, port=port, bindir=bindir, as_user=as_user)
    data = directory / "data"
    cluster._run(
        "initdb",
        "-D",
        str(data),
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {directory} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    cluster._run(
        "pg_ctl", "start", "-w", "-D", str(data), "-l", str(directory / "log"), "-o", options
    )
    return cluster
