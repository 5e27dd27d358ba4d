"""The demo barometer, a client of the app's services (the app itself never imports it).

``barometre demo`` (:mod:`demo.cli`, a plugin of the app's command line) builds two editions
through the same service functions a user's request goes through, so what it stores
validates, replays and hashes like a real submission:

- :mod:`demo.editions`: :func:`~demo.editions.build_demo`, the two editions end to end;
- :mod:`demo.accounts`: one account per role, more shoppers and jurors;
- :mod:`demo.visits`: missions, shoppers' reports (``POST /api/v1/visits`` bodies), reviews;
- :mod:`demo.responses`: citizen responses through the collection service;
- :mod:`demo.jury`: the 2025 deliberation and publication;
- :mod:`demo.answers`: plausible answers to any instrument (also used by test factories and
  benchmarks).
"""
