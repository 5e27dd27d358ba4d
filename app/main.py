"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from app import pages
from app.accounts import routes as accounts_routes
from app.accounts.dependencies import load_layout_user
from app.activity import audit_routes, jobs_routes, outbox_routes
from app.campaigns import routes as campaigns_routes
from app.collection import routes as collection_routes
from app.core.config import Settings, get_settings
from app.core.db import create_db_engine
from app.core.handlers import install_error_handlers
from app.core.middleware import (
    BodySizeLimitMiddleware,
    LocaleMiddleware,
    SecurityHeadersMiddleware,
)
from app.core.security import csrf_protect
from app.core.templating import set_layout_user_loader
from app.exports import routes as exports_routes
from app.instruments import routes as instruments_routes
from app.jury import routes as jury_routes
from app.missions import routes as missions_routes
from app.posters import routes as posters_routes
from app.publication import routes as publication_routes
from app.registry import routes as registry_routes
from app.results import routes as results_routes
from app.reviews import routes as reviews_routes
from app.scorecards import routes as scorecards_routes
from app.visits import routes as visits_routes

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
SESSION_COOKIE = "barometre_session"
# A questionnaire with a 2,000-character comment is a few kB; 256 kB leaves room for a 100 kB
# text to reach validation and be refused with a message naming its field.
MAX_BODY_BYTES = 256 * 1024
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # registry and candidate CSV uploads


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run a job worker in the web process unless another process runs them
    (``BAROMETRE_IN_PROCESS_WORKER=false``, ``barometre serve --no-worker``)."""
    worker = None
    if app.state.settings.in_process_worker:
        from app.jobs.worker import Worker

        worker = Worker(app.state.engine, app.state.settings)
        worker.start()
    try:
        yield
    finally:
        if worker is not None:
            worker.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="Baromètre",
        summary="Citizen-experience barometers: surveys, mystery shopping, scores and rankings.",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        dependencies=[Depends(csrf_protect)],
    )
    app.state.settings = settings
    app.state.engine = create_db_engine(settings.database_url)

    # Error pages show who is signed in too; core asks the accounts domain through this hook.
    set_layout_user_loader(load_layout_user)
    install_error_handlers(app)
    # Added innermost first: the session must exist before the locale and the handlers use it.
    app.add_middleware(LocaleMiddleware, default_locale=settings.default_locale)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.secure_cookies or settings.environment == "production",
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(
        BodySizeLimitMiddleware,
        default_limit=MAX_BODY_BYTES,
        upload_limit=MAX_UPLOAD_BYTES,
        upload_prefixes=(
            "/registry/import",
            "/campaigns/",
            # Shoppers' evidence (10 MB, checked by the upload itself with a clear message).
            "/me/missions/",
            "/api/v1/missions/",
        ),
    )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # The citizen routes come first: routes are matched in order, and they take by far the
    # most traffic during a campaign (the health check in `pages` stays near the top too).
    app.include_router(collection_routes.api_router)
    app.include_router(collection_routes.router)
    app.include_router(pages.router)
    app.include_router(accounts_routes.router)
    app.include_router(registry_routes.router)
    app.include_router(registry_routes.api_router)
    app.include_router(campaigns_routes.router)
    app.include_router(campaigns_routes.api_router)
    app.include_router(instruments_routes.router)
    app.include_router(posters_routes.router)
    app.include_router(missions_routes.router)
    app.include_router(jury_routes.router)
    app.include_router(scorecards_routes.router)
    app.include_router(scorecards_routes.api_router)
    app.include_router(publication_routes.router)
    app.include_router(visits_routes.router)
    app.include_router(visits_routes.api_router)
    app.include_router(reviews_routes.router)
    app.include_router(reviews_routes.api_router)
    app.include_router(results_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(publication_routes.api_router)
    app.include_router(jobs_routes.router)
    app.include_router(outbox_routes.router)
    app.include_router(exports_routes.router)
    return app
