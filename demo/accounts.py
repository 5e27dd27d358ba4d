"""The demo's accounts: one per role (printed by ``barometre demo``), more shoppers and jurors.

Created as an organiser creates accounts: the admin through ``create_admin`` (what
``barometre users create-admin`` does), everyone else by the admin through ``create_user``
and an invitation that the new user accepts with their password. Passwords are known
(``demo-<role>-2026``): the demo is refused in production.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from app.accounts import repository as accounts_repository
from app.accounts.models import Role, User
from app.accounts.schemas import PasswordChoice, UserCreate
from app.accounts.service import accept_invitation, create_admin, create_invitation, create_user

DEMO_DOMAIN = "demo.barometre.fr"
DEMO_AUTHORITY = "69123"  # Lyon: the demo authority contact's town, a candidate both years
# Besides shopper@…: balanced mission loads need several shoppers (they share its password).
EXTRA_SHOPPERS = 3
# Besides jury@… (the president): a deliberation needs several votes (and one conflict).
EXTRA_JURORS = ("jury-2", "jury-3")
INVITATION_DAYS = 7


@dataclass(frozen=True)
class DemoAccount:
    role: str
    email: str
    password: str
    authority: str | None


def demo_accounts(authority_code: str | None, *, domain: str = DEMO_DOMAIN) -> list[DemoAccount]:
    """The documented accounts, one per role."""
    return [
        DemoAccount(
            role=role.value,
            email=f"{role.value}@{domain}",
            password=f"demo-{role.value}-2026",
            authority=authority_code if role == Role.authority else None,
        )
        for role in Role
    ]


def invite(
    session: Session,
    *,
    email: str,
    display_name: str,
    role: Role,
    password: str,
    created_by: User | None,
    authority_code: str | None = None,
) -> User:
    """The account with this e-mail, created and invited by ``created_by`` if it is new; the
    invitation is accepted at once with ``password``."""
    user = accounts_repository.get_by_email(session, email)
    if user is not None:
        return user
    user = create_user(
        session,
        data=UserCreate(
            email=email, display_name=display_name, role=role, authority_code=authority_code
        ),
        created_by=created_by,
    )
    token = create_invitation(session, user=user, created_by=created_by, valid_days=INVITATION_DAYS)
    choice = PasswordChoice(password=password, password_confirm=password)
    return accept_invitation(session, token=token, choice=choice)


def ensure_role_accounts(session: Session, *, domain: str = DEMO_DOMAIN) -> User:
    """One account per role (the authority contact's in :data:`DEMO_AUTHORITY`); returns the
    admin, who created the others."""
    accounts = demo_accounts(DEMO_AUTHORITY, domain=domain)
    admin_account = next(account for account in accounts if account.role == Role.admin)
    admin = accounts_repository.get_by_email(session, admin_account.email)
    if admin is None:
        admin = create_admin(
            session,
            email=admin_account.email,
            display_name=f"Démo {Role.admin.value}",
            password=admin_account.password,
        )
    for account in accounts:
        if account.role != Role.admin:
            invite(
                session,
                email=account.email,
                display_name=f"Démo {account.role}",
                role=Role(account.role),
                password=account.password,
                created_by=admin,
                authority_code=account.authority,
            )
    session.flush()
    return admin


def ensure_demo_shoppers(
    session: Session, *, domain: str = DEMO_DOMAIN, created_by: User | None = None
) -> list[User]:
    """The demo shopper and three more, shopper-2@… to shopper-4@…, all with the demo
    shopper's password (demo-shopper-2026)."""
    shoppers = []
    for number in range(1, EXTRA_SHOPPERS + 2):
        suffix = "" if number == 1 else f"-{number}"
        shoppers.append(
            invite(
                session,
                email=f"shopper{suffix}@{domain}",
                display_name=f"Démo shopper {number}",
                role=Role.shopper,
                password=f"demo-{Role.shopper.value}-2026",
                created_by=created_by,
            )
        )
    session.flush()
    return shoppers


def ensure_jurors(
    session: Session, *, domain: str = DEMO_DOMAIN, created_by: User | None = None
) -> list[User]:
    """The extra jurors (jury-2@…, jury-3@…, password demo-jury-N-2026)."""
    jurors = [
        invite(
            session,
            email=f"{local_part}@{domain}",
            display_name=f"Démo {local_part}",
            role=Role.jury,
            password=f"demo-{local_part}-2026",
            created_by=created_by,
        )
        for local_part in EXTRA_JURORS
    ]
    session.flush()
    return jurors
