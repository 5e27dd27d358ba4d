"""Test data built through the services, as users' requests build it (never raw rows).

- :mod:`tests.factories.responses`: citizen responses through the collection service;
- :mod:`tests.factories.visits`: missions, shoppers' reports and their review.

Plausible answers come from :mod:`demo.answers`; nothing here uses the demo's builders.
"""
