"""The demo barometer, a client of the app's services (the app itself never imports it).

``barometre demo`` (:mod:`demo.cli`, a plugin of the app's command line) builds three editions
through the same service functions a user's request goes through, so what it stores
validates, replays and hashes like a real submission:

- :mod:`demo.editions`: :func:`~demo.editions.build_demo`, the three editions end to end;
- :mod:`demo.accounts`: one account per role, more shoppers and jurors;
- :mod:`demo.visits`: missions, shoppers' reports (``POST /api/v1/visits`` bodies), reviews;
- :mod:`demo.responses`: citizen responses through the collection service;
- :mod:`demo.quality`: how good each authority is, channel by channel and year by year;
- :mod:`demo.jury`: 2024's deliberation and publication, 2025's jury at work;
- :mod:`demo.answers`: plausible answers to any instrument (also used by test factories and
  benchmarks).
"""
