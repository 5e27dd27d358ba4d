"""The organiser's follow-up pages: background jobs, the outbox and the audit log.

They live apart from ``app.jobs``, ``app.mail`` and ``app.audit`` for the direction of
imports: accounts records its actions in the audit trail and sends e-mails, so accounts imports
those packages; these pages are for admins and name the actors, so they import accounts. No
package imports this one but ``app.main``.
"""
