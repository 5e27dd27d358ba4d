"""The survey target of a public link, for async routes: from the process's cache (no
database access), else read in a worker thread, so the event loop never waits on a query.

When the campaign's entry expires, the requests that arrive together wait for one re-read of
it instead of each starting its own (which would queue dozens of reads behind the thread pool
every ``cache.TTL_SECONDS``).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.collection import cache, service
from app.collection.service import SurveyTarget

_REFRESHING: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[Any, asyncio.Future[None]]
] = weakref.WeakKeyDictionary()


async def survey_target(
    engine: Engine, *, organiser: str, year: int, authority_code: str
) -> SurveyTarget:
    """``service.survey_target`` for async code: no database access on a cache hit, reads in
    a worker thread otherwise.

    When the campaign's entry expires, the requests that arrive together wait for one
    re-read of it instead of each starting its own (which would queue dozens of reads behind
    the thread pool every ``cache.TTL_SECONDS``).
    """
    target = service.cached_survey_target(
        engine, organiser=organiser, year=year, authority_code=authority_code
    )
    if target is not None:
        return target
    await _refresh_campaign_once(engine, organiser=organiser, year=year)
    target = service.cached_survey_target(
        engine, organiser=organiser, year=year, authority_code=authority_code
    )
    if target is None:  # a candidacy to read, or an error to raise in this request's context
        target = await asyncio.to_thread(_read_target, engine, organiser, year, authority_code)
    return target


async def _refresh_campaign_once(engine: Engine, *, organiser: str, year: int) -> None:
    key = cache.campaign_key(engine, organiser=organiser, year=year)
    if cache.get(key) is not None:
        return
    loop = asyncio.get_running_loop()
    refreshing = _REFRESHING.setdefault(loop, {})
    future = refreshing.get(key)
    if future is None:
        future = refreshing[key] = loop.create_future()
        try:
            await asyncio.to_thread(_read_open_campaign, engine, organiser, year)
        finally:
            del refreshing[key]
            future.set_result(None)
    else:
        await asyncio.shield(future)


def _read_open_campaign(engine: Engine, organiser: str, year: int) -> None:
    with Session(engine, expire_on_commit=False) as session:  # reads only
        service.refresh_open_campaign(session, organiser=organiser, year=year)


def _read_target(engine: Engine, organiser: str, year: int, authority_code: str) -> SurveyTarget:
    with Session(engine, expire_on_commit=False) as session:  # reads only
        return service.survey_target(
            session, organiser=organiser, year=year, authority_code=authority_code
        )
