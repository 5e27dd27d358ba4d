"""Citizens invited by e-mail: ``invitation_recipients`` (address until close, one reminder,
opt-out, erasure; the counts remain).

Revision ID: 4ca13cfcdfb3
Revises: 6d2e0f4a9b71
Create Date: 2026-12-03 10:13:28.360582
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.timeutil

revision: str = "4ca13cfcdfb3"
down_revision: str | None = "6d2e0f4a9b71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invitation_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invitation_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("email_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("optout_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("invited_at", app.core.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remind_after", app.core.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reminded_at", app.core.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.Column("opted_out_at", app.core.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.Column("erased_at", app.core.timeutil.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
        ),
        sa.ForeignKeyConstraint(
            ["invitation_id"],
            ["invitations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "email_hash", name="uq_invitation_recipients_email"),
        sa.UniqueConstraint("invitation_id"),
        sa.UniqueConstraint("optout_token_hash"),
    )
    with op.batch_alter_table("invitation_recipients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_invitation_recipients_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_invitation_recipients_remind_after"), ["remind_after"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("invitation_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_recipients_remind_after"))
        batch_op.drop_index(batch_op.f("ix_invitation_recipients_campaign_id"))

    op.drop_table("invitation_recipients")
