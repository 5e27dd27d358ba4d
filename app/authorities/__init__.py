"""The registry of French local authorities: its rows, queries and the all-or-nothing import.

Reference data below every other domain: it imports only core (its pages, which need the
accounts domain's authorization, are ``app.registry``).
"""
