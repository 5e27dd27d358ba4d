"""Labels of values shown in the UI (states, roles, kinds, channels), marked for translation.

Templates translate them at render time with ``_(value)``; listing them here lets Babel
extract them into the catalogs.
"""


def N_(message: str) -> str:
    return message


CAMPAIGN_STATES = [
    N_("draft"),
    N_("open"),
    N_("closed"),
    N_("scored"),
    N_("deliberated"),
    N_("published"),
]
CANDIDATE_STATUSES = [N_("registered"), N_("withdrawn")]
ROLES = [N_("admin"), N_("reviewer"), N_("shopper"), N_("jury"), N_("authority")]
AUTHORITY_KINDS = [
    N_("commune"),
    N_("epci-cc"),
    N_("epci-ca"),
    N_("epci-cu"),
    N_("epci-metro"),
    N_("epci-met69"),
    N_("departement"),
    N_("region"),
]
CHANNELS = [
    N_("guichet"),
    N_("telephone"),
    N_("courriel"),
    N_("courrier"),
    N_("site"),
    N_("reseaux"),
]
