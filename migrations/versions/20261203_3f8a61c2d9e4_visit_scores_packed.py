"""packed scores of approved visits

Stored at approval (app.reviews.service) with the key of what they were computed from; visits
approved before this revision keep None and are scored at read time by the scoring run until
``barometre store-visit-scores`` fills them in (no backfill here: scoring a visit
needs the application's instrument loader and holiday calendars, which a migration should not
import).

Revision ID: 3f8a61c2d9e4
Revises: 5c1e0a7d2b13
Create Date: 2026-12-03 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "3f8a61c2d9e4"
down_revision: str | None = "5c1e0a7d2b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scores", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("scores_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("scores_key")
        batch_op.drop_column("scores")
