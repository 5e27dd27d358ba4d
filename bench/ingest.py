"""Throughput of the citizen submission path against the real server; prints JSON.

For SQLite (a fresh file) and PostgreSQL (a private cluster, as the test suite starts it), this
builds the demo (``barometre demo``: registry, published and pinned instruments, the open 2026
campaign), starts ``uvicorn app.main:create_app --factory`` as a subprocess with production
settings, and drives, against that same server:

1. ``GET /healthz`` (no database): the ceiling of the stack on this machine;
2. ``POST /api/v1/responses`` with valid, unique submissions spread over the 2026 candidates;
3. the whole citizen path as a browser without JavaScript makes it: GET ``/s/2026/{code}``,
   then POST each page of the form (following each 303 with a GET of the next page) until the
   303 to ``/merci``; each completion is a new citizen with its own cookie jar (the session
   cookie the first page sets is sent back, as a browser does).

Each phase is bounded (a request budget and at most ``--seconds`` seconds). The load comes from
127.0.0.1 only, so the server gets a generous public rate limit
(``BAROMETRE_PUBLIC_SUBMISSIONS_PER_WINDOW``); the output says so. The client is a small
asyncio HTTP/1.1 keep-alive client (httpx costs more CPU than the server under test); its CPU
use per phase is printed, so one can see it is not the limit. So is the server's CPU time per
successful operation (all its processes, from /proc): the machine may be shared, and
``ratio_to_health_by_server_cpu`` (health's CPU per request over the API's) says what the
measured ratio would be with the cores to itself. The measured figures are the ones quoted.

Run: ``uv run python bench/ingest.py`` (not part of the test suite). Options: ``--workers``,
``--seconds``, ``--only sqlite|postgresql``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

YEAR = 2026
RATE_LIMIT = 100_000_000
SECRET_KEY = "bench-secret-key-" + "x" * 40
VALID_ANSWERS: dict[str, Any] = {
    "channel": "guichet",
    "overall": 3,
    "satisfied": 4,
    "trust": 3,
    "effective": 5,
    "ease": 4,
    "efficiency": 2,
    "equity": "na",
    "employees": 5,
    "courtesy": 4,
    "clarity": 4,
    "delay_kept": "yes",
    "age_band": "30_44",
    "comment": "Très bon accueil, merci.",
}
AGREEMENT = [
    "satisfied",
    "trust",
    "effective",
    "ease",
    "efficiency",
    "equity",
    "employees",
    "courtesy",
    "clarity",
]
CHANNELS = ["guichet", "telephone", "courriel", "site"]
ACTION = re.compile(r'<form method="post" action="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


# --- a small HTTP/1.1 keep-alive client ------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "",
        cookies: dict[str, str] | None = None,
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """One request; Set-Cookie headers come back joined by newlines (and are applied to
        ``cookies`` when given, as a browser's cookie jar)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if cookies:
            head += "Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()) + "\r\n"
        if body or method == "POST":
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                key = name.strip().lower()
                if key == b"set-cookie" and key in headers:
                    headers[key] += b"\n" + value.strip()
                else:
                    headers[key] = value.strip()
        if b"content-length" in headers:
            payload = await self.reader.readexactly(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            payload = b"".join(c[:-2] for c in chunks)
        else:
            raise HttpError("response without a length")
        if headers.get(b"connection") == b"close":
            self.close()
        if cookies is not None and b"set-cookie" in headers:
            for set_cookie in headers[b"set-cookie"].decode("latin-1").split("\n"):
                pair = set_cookie.split(";", 1)[0]
                cookie_name, _sep, cookie_value = pair.partition("=")
                if "max-age=0" in set_cookie.lower() or not cookie_value:
                    cookies.pop(cookie_name.strip(), None)
                else:
                    cookies[cookie_name.strip()] = cookie_value.strip()
        return status, headers, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Phase:
    name: str
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(text[:300])

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

        return {
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.elapsed, 2),
            "per_second": round(self.ok / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            # Share of one core the bench client used: well under 1.0 means it was not the limit.
            "client_cpu_share": round(self.client_cpu / self.elapsed, 2) if self.elapsed else None,
            # The server's CPU time per successful operation (all workers): what a request
            # costs, whatever else the machine was doing during the run.
            "server_cpu_ms_per_ok": (
                round(1000 * self.server_cpu / self.ok, 3)
                if self.server_cpu is not None and self.ok
                else None
            ),
            **({"error_samples": self.error_samples} if self.error_samples else {}),
        }


async def run_phase(
    name: str,
    port: int,
    *,
    connections: int,
    budget: int,
    seconds: float,
    one: Any,
    server_pid: int | None = None,
) -> Phase:
    """``connections`` workers each run ``one(conn, i)`` until the budget or the time is spent."""
    phase = Phase(name)
    server_cpu = server_cpu_seconds(server_pid) if server_pid else None
    counter = iter(range(budget))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = Connection("127.0.0.1", port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    break
                started = time.perf_counter()
                try:
                    problem = await one(conn, i)
                except (OSError, asyncio.IncompleteReadError, HttpError, ValueError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    conn.close()
                if problem:
                    phase.error(problem)
                else:
                    phase.ok += 1
                    phase.latencies.append(time.perf_counter() - started)
        finally:
            conn.close()

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    phase.elapsed = time.perf_counter() - start
    phase.client_cpu = time.process_time() - cpu
    if server_pid and server_cpu is not None:
        phase.server_cpu = server_cpu_seconds(server_pid) - server_cpu
    print(f"  {name}: {phase.summary()}", file=sys.stderr)
    return phase


def health_one() -> Any:
    async def one(conn: Connection, _i: int) -> str | None:
        status, _h, _b = await conn.request("GET", "/healthz")
        return None if status == 200 else f"healthz {status}"

    return one


def api_one(codes: list[str], accepted_ids: list[str]) -> Any:
    async def one(conn: Connection, i: int) -> str | None:
        channel = CHANNELS[i % len(CHANNELS)]
        answers = dict(VALID_ANSWERS, channel=channel, overall=1 + i % 3, satisfied=1 + i % 5)
        if channel in {"telephone", "courriel", "site"}:
            answers["reached"] = "yes"
        response_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "id": response_id,
                "campaign": YEAR,
                "authority": codes[i % len(codes)],
                "channel": channel,
                "answers": answers,
            }
        ).encode()
        status, _h, payload = await conn.request(
            "POST", "/api/v1/responses", body, "application/json"
        )
        if status != 201:
            return f"api {status}: {payload[:200]!r}"
        accepted_ids.append(response_id)
        return None

    return one


def form_one(codes: list[str], requests_made: list[int] | None = None) -> Any:
    """The no-JavaScript browser: GET the first page, POST every page, follow each 303.

    Each response is a new citizen: a fresh cookie jar, kept through the questionnaire as a
    browser keeps it (the session cookie the first page sets is sent back). Every request
    made is counted in ``requests_made[0]``.
    """
    counter = requests_made if requests_made is not None else [0]

    async def one(conn: Connection, i: int) -> str | None:

        channel = CHANNELS[i % 2]  # guichet, telephone: with and without the skip-logic page
        start = f"/s/{YEAR}/{codes[i % len(codes)]}?canal={channel}&src=qr"
        jar: dict[str, str] = {}
        counter[0] += 1
        status, _h, page = await conn.request("GET", start, cookies=jar)
        if status != 200:
            return f"start {status}"
        html = page.decode()
        match = ACTION.search(html)
        if not match:
            return "no form"
        action = match.group(1)
        answers = {1: {"channel": channel, "overall": "3"}, 2: dict.fromkeys(AGREEMENT, "4")}
        for number in range(1, 10):
            data = dict(HIDDEN.findall(html))
            data.update({"page": str(number), "action": "next", **answers.get(number, {})})
            if "delay_kept" in html:
                data["delay_kept"] = "yes"
            if 'name="reached"' in html:
                data["reached"] = "yes"
            counter[0] += 1
            status, headers, _b = await conn.request(
                "POST",
                action,
                urlencode(data).encode(),
                "application/x-www-form-urlencoded",
                cookies=jar,
            )
            if status != 303:
                return f"page {number}: {status}"
            location = headers[b"location"].decode()
            if location.endswith("/merci"):
                return None
            counter[0] += 1
            status, _h, page = await conn.request("GET", location, cookies=jar)
            if status != 200:
                return f"GET {location}: {status}"
            html = page.decode()
        return "the questionnaire never ended"

    return one


# --- databases and the server ----------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            for child in children:
                found.extend(_descendants(int(child)))
    except OSError:
        pass
    return found


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by the server and its workers (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for process in _descendants(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_demo(env: dict[str, str]) -> None:
    # The demo is refused in production (known passwords): build it as development, then serve
    # the same database with production settings.
    subprocess.run(
        [sys.executable, "-m", "app.cli", "demo"],
        cwd=ROOT,
        env={**env, "BAROMETRE_ENVIRONMENT": "development"},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def candidate_codes(database_url: str) -> list[str]:
    import sqlalchemy as sa

    from app.core.db import create_db_engine

    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        codes = connection.execute(
            sa.text(
                "SELECT c.authority_code FROM candidates c "
                "JOIN campaigns k ON k.id = c.campaign_id "
                "WHERE k.year = :year AND k.state = 'open' AND c.status = 'registered' "
                "ORDER BY c.authority_code"
            ),
            {"year": YEAR},
        ).scalars()
        result = list(codes)
    engine.dispose()
    return result


def count_rows(database_url: str) -> int:
    import sqlalchemy as sa

    from app.core.db import create_db_engine

    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(
            sa.text(
                "SELECT count(*) FROM responses r JOIN campaigns k ON k.id = r.campaign_id "
                "WHERE k.year = :year"
            ),
            {"year": YEAR},
        ).scalar_one()
    engine.dispose()
    return int(count)


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if b"200" in sock.recv(64):
                    return process
        except OSError:
            time.sleep(0.1)
    stop_server(process)
    raise RuntimeError("the server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def drive(
    port: int, codes: list[str], args: argparse.Namespace, server_pid: int
) -> dict[str, Any]:
    # Warm every worker (imports, caches, connection pools) before measuring.
    warm_api = await run_phase(
        "warm-up", port, connections=8, budget=400, seconds=10, one=api_one(codes, [])
    )
    warm_form = await run_phase(
        "warm-up", port, connections=8, budget=16, seconds=10, one=form_one(codes)
    )
    health = await run_phase(
        "healthz",
        port,
        connections=args.connections,
        budget=args.requests,
        seconds=args.seconds,
        one=health_one(),
        server_pid=server_pid,
    )
    accepted_ids: list[str] = []
    api = await run_phase(
        "api",
        port,
        connections=args.connections,
        budget=args.requests,
        seconds=args.seconds,
        one=api_one(codes, accepted_ids),
        server_pid=server_pid,
    )
    form_requests = [0]
    form = await run_phase(
        "form",
        port,
        connections=args.form_connections,
        budget=args.form_responses,
        seconds=args.seconds,
        one=form_one(codes, form_requests),
        server_pid=server_pid,
    )
    return {
        "health": health,
        "api": api,
        "form": form,
        "form_requests": form_requests[0],
        "warm_up_accepted": warm_api.ok + warm_form.ok,
    }


def _cpu_ratio(health: Phase, other: Phase) -> float | None:
    if not (health.server_cpu and other.server_cpu and health.ok and other.ok):
        return None
    return round((health.server_cpu / health.ok) / (other.server_cpu / other.ok), 3)


def bench_database(name: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix=f"barometre-bench-{name}-"))
    env = {
        **os.environ,
        "BAROMETRE_DATABASE_URL": database_url,
        "BAROMETRE_VAR_DIR": str(var_dir),
        "BAROMETRE_SECRET_KEY": SECRET_KEY,
        "BAROMETRE_PUBLIC_SUBMISSIONS_PER_WINDOW": str(RATE_LIMIT),
        "BAROMETRE_WORKERS": str(args.workers),
    }
    try:
        build_demo(env)
        codes = candidate_codes(database_url)
        before = count_rows(database_url)
        port = free_port()
        server = start_server({**env, "BAROMETRE_ENVIRONMENT": "production"}, port, args.workers)
        try:
            result = asyncio.run(drive(port, codes, args, server.pid))
        finally:
            stop_server(server)
        stored = count_rows(database_url) - before
        health, api, form = result["health"], result["api"], result["form"]
        accepted = result["warm_up_accepted"] + api.ok + form.ok
        health_rate = health.ok / health.elapsed
        api_rate = api.ok / api.elapsed
        return {
            "database": name,
            "workers": args.workers,
            "candidates": len(codes),
            "health": health.summary(),
            "api": {
                **api.summary(),
                "accepted_per_second": round(api_rate, 1),
                "ratio_to_health": round(api_rate / health_rate, 3),
                # The same ratio from the server's CPU time per request (health's over the
                # API's): what the measured ratio would be with the machine to itself.
                "ratio_to_health_by_server_cpu": _cpu_ratio(health, api),
            },
            "form": {
                **form.summary(),
                "completed_per_second": round(form.ok / form.elapsed, 1),
                "requests_per_completed_questionnaire": (
                    round(result["form_requests"] / form.ok, 2) if form.ok else None
                ),
            },
            # What one citizen costs the server, whatever else the machine was doing: CPU
            # milliseconds (all workers) per API submission and per completed questionnaire.
            "server_cpu_ms_per_api_submission": api.summary()["server_cpu_ms_per_ok"],
            "server_cpu_ms_per_completed_questionnaire": form.summary()["server_cpu_ms_per_ok"],
            # Every response the bench saw accepted (API 201s and completed forms, warm-up
            # included) must be stored exactly once: rows counted in the database afterwards.
            "rows_stored": stored,
            "rows_accepted": accepted,
            "rows_stored_equals_accepted": stored == accepted,
        }
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase, at most 60")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--requests", type=int, default=30_000, help="budget per phase")
    parser.add_argument("--form-connections", type=int, default=32)
    parser.add_argument("--form-responses", type=int, default=4_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    args.seconds = min(args.seconds, 60.0)

    results = []
    if args.only in (None, "sqlite"):
        directory = Path(tempfile.mkdtemp(prefix="barometre-bench-sqlite-"))
        try:
            results.append(bench_database("sqlite", f"sqlite:///{directory / 'bench.db'}", args))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    if args.only in (None, "postgresql"):
        from tests.support.postgres import start_private_cluster

        cluster = start_private_cluster()
        try:
            results.append(bench_database("postgresql", cluster.url, args))
        finally:
            cluster.stop()
    print(
        json.dumps(
            {
                "note": (
                    "All load comes from 127.0.0.1, so the server runs with "
                    f"BAROMETRE_PUBLIC_SUBMISSIONS_PER_WINDOW={RATE_LIMIT} (production default "
                    "120 per address and window); every other setting is production's."
                ),
                "machine_cpus": os.cpu_count(),
                "targets": {
                    "sqlite_ratio_to_health": ">= 0.5",
                    "sqlite_p99_ms": "<= 250",
                    "api_per_second": ">= 1060 (10x LimeSurvey's 106/s)",
                    "form_completed_per_second": ">= 200 (50x LimeSurvey's 4/s)",
                },
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
