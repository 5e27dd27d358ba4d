"""The registry's pages and API for organisers: search, one authority, the file import.

They live apart from ``app.authorities`` (the registry's rows, queries and import service) for
the direction of imports: a user may belong to an authority, so accounts imports authorities;
these pages are for admins, so they import accounts. ``app.authorities`` itself imports only
core, and no package imports this one but ``app.main``.
"""
