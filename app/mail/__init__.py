"""E-mail through an outbox: written with the action that causes it, sent by the job worker."""
