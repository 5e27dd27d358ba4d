"""End-to-end scoring run of a national-scale campaign on SQLite; prints JSON figures.

    uv run python bench/results.py [--database PATH] [--keep]

Builds (not timed) a synthetic campaign on the real registry: 2,000 candidates (250 in each
of the 8 default categories), 1,000,000 citizen responses (about 2 % flagged too fast and
excluded) and 24,000 approved visits (12 per candidate over the 6 channels), all valid per
the default instruments. Then, in a fresh process (so peak memory is the run's own), it
times ``run_scoring`` from the database: reads + computation + writes + commit, per stage.

Finally, if the part-2 routes exist, it measures the server time of the jury category page
and of a scorecard page (p95 over repeated requests through the ASGI app, in-process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N_CANDIDATES = 2_000
N_RESPONSES = 1_000_000
TESTS = {"guichet": 3, "telephone": 3, "courriel": 2, "courrier": 2, "site": 1, "reseaux": 1}
YEAR = 2030
ORGANISER = "Bench"
SEED = 2030
LIKERT = ["satisfied", "trust", "effective", "ease", "efficiency", "equity", "employees"]
LIKERT += ["courtesy", "clarity"]
CHANNELS = ["guichet", "telephone", "courriel", "courrier", "site", "reseaux"]
AGES = ["under_30", "30_44", "45_59", "60_74", "75_plus", "no_answer"]


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def build(url: str) -> dict[str, Any]:
    """Create the synthetic campaign in an empty database (schema by Alembic)."""
    from alembic import command
    from sqlmodel import Session, col, select

    import surveys
    from app.authorities.models import Authority
    from app.authorities.service import BUNDLED_REGISTRY, import_registry_file
    from app.campaigns import repository as campaigns_repository
    from app.campaigns import service as campaigns_service
    from app.campaigns.models import Candidate
    from app.campaigns.schemas import CampaignConfig, CampaignCreate
    from app.cli import alembic_config
    from app.core.db import create_db_engine, row_id
    from app.instruments.service import load_published, publish
    from app.results.inputs import store_missing_visit_scores
    from bench.bulk import add_approved_visits
    from demo.answers import authority_quality

    started = time.perf_counter()
    command.upgrade(alembic_config(url), "head")
    engine = create_db_engine(url)
    rng = np.random.default_rng(SEED)
    with Session(engine, expire_on_commit=False) as session:
        import_registry_file(session, path=BUNDLED_REGISTRY)
        for instrument in surveys.default_instruments().values():
            publish(session, instrument=instrument, actor=None)
        config = CampaignConfig(seed=SEED, tests_per_channel=TESTS)  # type: ignore[arg-type]
        campaign = campaigns_service.create_campaign(
            session,
            data=CampaignCreate(
                year=YEAR,
                name="Bench",
                opens_at=dt.date(YEAR, 1, 15),
                closes_at=dt.date(YEAR, 10, 31),
            ),
            organiser=ORGANISER,
            actor=None,
            config=config,
        )
        by_category: dict[str, list[str]] = {c.key: [] for c in config.categories}
        for authority in session.exec(select(Authority).order_by(col(Authority.code))).all():
            category = config.category_for(authority.kind, authority.population)
            if category is not None:
                by_category[category.key].append(authority.code)
        # 250 per category where the registry has them; the shortfall of the small
        # categories (large towns, départements) goes to the others, 2,000 in all.
        quota = {
            key: min(N_CANDIDATES // len(by_category), len(v)) for key, v in by_category.items()
        }
        while sum(quota.values()) < N_CANDIDATES:
            open_keys = [k for k in quota if quota[k] < len(by_category[k])]
            for key in open_keys[: N_CANDIDATES - sum(quota.values())]:
                quota[key] += 1
        chosen: list[tuple[str, str]] = []
        for key, codes in by_category.items():
            picked = rng.choice(len(codes), size=quota[key], replace=False)
            chosen += [(codes[i], key) for i in sorted(picked)]
        session.add_all(
            Candidate(campaign_id=row_id(campaign), authority_code=code, category=key)
            for code, key in chosen
        )
        campaigns_service.pin_latest_versions(session, campaign=campaign, actor=None)
        campaigns_service.transition(session, campaign=campaign, to_state="open", actor=None)
        session.commit()
        codes = sorted(code for code, _ in chosen)
        quality = authority_quality(codes, YEAR)
        survey_version = next(
            v
            for _, v in campaigns_repository.pinned_instruments(session, row_id(campaign))
            if v.kind == "survey"
        )
        _bulk_responses(
            session,
            row_id(campaign),
            row_id(survey_version),
            load_published(survey_version),
            codes,
            quality,
            rng,
        )
        session.commit()
        built_responses = time.perf_counter() - started
        add_approved_visits(session, campaign=campaign, rng=rng, codes=codes, quality=quality)
        # Approval stores each visit's packed scores (app.reviews.service); the bulk insert
        # bypasses approval, so store them the same way here, untimed.
        store_missing_visit_scores(session, campaign_id=row_id(campaign))
        campaigns_service.transition(session, campaign=campaign, to_state="closed", actor=None)
        session.commit()
    engine.dispose()
    return {
        "candidates": len(codes),
        "categories": quota,
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_responses_seconds": round(built_responses, 1),
    }


def _bulk_responses(
    session: Any,
    campaign_id: int,
    version_id: int,
    survey: Any,
    codes: list[str],
    quality: dict[str, float],
    rng: np.random.Generator,
) -> None:
    """1,000,000 valid responses written with one executemany per 100,000 rows.

    Each row gets its packed item scores from ``surveys.pack_item_scores``, as every
    submission does in ``app.collection.submission.prepare``.
    """
    import surveys

    share = rng.lognormal(0.0, 0.8, len(codes))
    sizes = 30 + rng.multinomial(N_RESPONSES - 30 * len(codes), share / share.sum())
    authority = np.repeat(np.arange(len(codes)), sizes)
    n = len(authority)
    level = np.array([quality[c] for c in codes])[authority]
    person = np.clip(rng.normal(level, 0.12), 0, 1)
    values = np.clip(np.rint(rng.normal(1 + 4 * person[:, None], 1.0, (n, len(LIKERT)))), 1, 5)
    na = rng.random((n, len(LIKERT))) < 0.05
    channel = rng.choice(len(CHANNELS), size=n, p=[0.35, 0.25, 0.2, 0.05, 0.1, 0.05])
    overall = np.clip(np.rint(1 + 2 * person + rng.normal(0, 0.4, n)), 1, 3).astype(int)
    age = rng.integers(0, len(AGES), n)
    too_fast = rng.random(n) < 0.02
    seconds = rng.integers(0, 270 * 86_400, n)
    ids = rng.bytes(16 * n)
    start = dt.datetime(YEAR, 1, 15, 8)
    sql = (
        "INSERT INTO responses (id, campaign_id, authority_code, instrument_version_id, channel, "
        "source, started_at, submitted_at, answers, profile, content_sha256, quality_flags, "
        "excluded, item_scores) VALUES (?, ?, ?, ?, ?, 'link', ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    connection = session.connection()
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        cells = ['"na"' if na[i, j] else str(int(values[i, j])) for j in range(len(LIKERT))]
        items = ",".join(f'"{key}":{cell}' for key, cell in zip(LIKERT, cells, strict=True))
        ch = CHANNELS[channel[i]]
        answers = (
            f'{{"channel":"{ch}","overall":{overall[i]},{items},'
            f'"delay_kept":"yes","age_band":"{AGES[age[i]]}"}}'
        )
        packed = surveys.pack_item_scores(survey, json.loads(answers))
        submitted = start + dt.timedelta(seconds=int(seconds[i]))
        began = submitted - dt.timedelta(seconds=12 if too_fast[i] else 240)
        rows.append(
            (
                uuid.UUID(bytes=ids[16 * i : 16 * i + 16], version=4).hex,
                campaign_id,
                codes[authority[i]],
                version_id,
                ch,
                began.strftime("%Y-%m-%d %H:%M:%S.000000"),
                submitted.strftime("%Y-%m-%d %H:%M:%S.000000"),
                answers,
                f'{{"age_band":"{AGES[age[i]]}"}}',
                hashlib.sha256(answers.encode()).hexdigest(),
                '["too_fast"]' if too_fast[i] else "[]",
                int(too_fast[i]),
                packed,
            )
        )
        if len(rows) == 100_000:
            connection.exec_driver_sql(sql, rows)
            rows = []
    if rows:
        connection.exec_driver_sql(sql, rows)


def score(url: str) -> dict[str, Any]:
    """Time one final scoring run from the database, in this (fresh) process."""
    from sqlmodel import Session

    from app.campaigns import repository as campaigns_repository
    from app.core.db import create_db_engine
    from app.results.service import run_scoring

    engine = create_db_engine(url)
    stages: list[tuple[str, float, float]] = []
    started = time.perf_counter()
    cpu_started = time.process_time()

    def progress(percent: int, message: str) -> None:
        stages.append((message, time.perf_counter() - started, time.process_time() - cpu_started))

    with Session(engine, expire_on_commit=False) as session:
        campaign = campaigns_repository.get_by_year(session, organiser=ORGANISER, year=YEAR)
        assert campaign is not None
        result = run_scoring(session, campaign=campaign, actor=None, progress=progress)
        progress(100, "commit")
        session.commit()
    total = time.perf_counter() - started
    cpu_total = time.process_time() - cpu_started
    # Each progress message starts a stage: its time runs until the next message.
    seen: dict[str, float] = {}
    seen_cpu: dict[str, float] = {}
    marks = [*stages, ("end", total, cpu_total)]
    for (message, at, cpu_at), (_next, next_at, next_cpu) in itertools.pairwise(marks):
        seen[message] = round(seen.get(message, 0.0) + next_at - at, 3)
        seen_cpu[message] = round(seen_cpu.get(message, 0.0) + next_cpu - cpu_at, 3)
    assert result.run is not None
    return {
        "run_id": result.run.id,
        "inputs_sha256": result.inputs_sha256,
        "end_to_end_seconds": round(total, 3),
        "read_seconds": round(result.timings["read_seconds"], 3),
        "compute_seconds": round(result.timings["compute_seconds"], 3),
        "write_seconds": round(result.timings["write_seconds"], 3),
        "stages_seconds": seen,
        "stages_cpu_seconds": seen_cpu,
        "cpu_seconds": round(cpu_total, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cores": os.cpu_count(),
        "responses_used": result.summary["responses_used"],
        "responses_excluded": result.summary["responses_excluded"],
        "visits_approved": result.summary["visits_approved"],
        "score_rows": result.summary["score_rows"],
        "rank_rows": result.summary["rank_rows"],
        "eligible": sum(c["eligible"] for c in result.summary["categories"].values()),
        "peak_rss_mb": _rss_mb(),
        "target_seconds": 30,
        "within_target": total <= 30,
    }


def pages(url: str) -> dict[str, Any]:
    """p95 server time of the jury category page and of a scorecard page."""
    from app.core.config import Settings
    from app.main import create_app

    settings = Settings(database_url=url, organiser=ORGANISER)  # type: ignore[call-arg]
    application = create_app(settings)
    return {
        "jury_page": _p95(application, "jury_category"),
        "scorecard_page": _p95(application, "scorecard"),
    }


def _flat_routes(routes: list[Any]) -> list[Any]:
    # FastAPI 0.165 nests included routers (``original_router``) in the route table.
    out: list[Any] = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        out.extend(_flat_routes(nested.routes) if nested is not None else [route])
    return out


def _p95(application: Any, route_name: str) -> dict[str, Any]:
    """Server time (ms) over 50 requests as an admin, in-process through the ASGI app."""
    from fastapi.testclient import TestClient
    from sqlmodel import Session, select

    from app.accounts.models import Role, User
    from app.campaigns.models import Campaign
    from app.core.security import hash_password
    from app.results.models import RankRow

    engine = application.state.engine
    with Session(engine) as session:
        user = session.exec(select(User).where(User.email == "bench-admin@example.org")).first()
        if user is None:
            user = User(
                email="bench-admin@example.org",
                display_name="Bench",
                role=Role.admin.value,
                password_hash=hash_password("bench-password-0123"),
            )
            session.add(user)
            session.commit()
        row = session.exec(select(RankRow).order_by(RankRow.id.desc())).first()  # type: ignore[union-attr]
        assert row is not None
        category, code = row.category, row.authority_code
        campaign = session.exec(select(Campaign).where(Campaign.organiser == ORGANISER)).one()
    params = {"campaign_id": campaign.id, "category": category, "code": code}
    route = next(
        r for r in _flat_routes(application.routes) if getattr(r, "name", "") == route_name
    )
    path = application.url_path_for(route_name, **{k: params[k] for k in route.param_convertors})
    with TestClient(application, base_url="http://testserver") as client:
        page = client.get("/login")
        import re

        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        client.post(
            "/login",
            data={
                "email": "bench-admin@example.org",
                "password": "bench-password-0123",
                "csrf_token": token.group(1) if token else "",
            },
        )
        timings = []
        status = None
        for _ in range(50):
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            status = response.status_code
    return {
        "path": path,
        "status": status,
        "p50_ms": round(float(np.percentile(timings, 50)), 1),
        "p95_ms": round(float(np.percentile(timings, 95)), 1),
        "target_p95_ms": 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", default="")
    parser.add_argument("--keep", action="store_true", help="keep the database file")
    parser.add_argument("--score-only", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.score_only:
        print(json.dumps(score(args.score_only)))
        return
    path = Path(args.database or Path(tempfile.mkdtemp()) / "bench-results.sqlite3")
    url = f"sqlite:///{path}"
    figures: dict[str, Any] = {"database": "sqlite", "path": str(path)}
    if not path.exists():
        figures["build"] = build(url)
    child = subprocess.run(
        [sys.executable, __file__, "--score-only", url],
        check=True,
        capture_output=True,
        text=True,
    )
    figures["scoring_run"] = json.loads(child.stdout.strip().splitlines()[-1])
    figures.update(pages(url))
    print(json.dumps(figures, indent=2))
    if not args.keep and not args.database:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
