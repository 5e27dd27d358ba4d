"""rank families (marginal beside simultaneous), unstable flag, packed item scores

Revision ID: 5c1e0a7d2b13
Revises: ec9d23f46ca8
Create Date: 2026-12-02 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '5c1e0a7d2b13'
down_revision: str | None = 'ec9d23f46ca8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('rank_rows', schema=None) as batch_op:
        batch_op.add_column(sa.Column('marginal_low', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('marginal_high', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('unstable', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('item_scores', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_column('item_scores')
    with op.batch_alter_table('rank_rows', schema=None) as batch_op:
        batch_op.drop_column('unstable')
        batch_op.drop_column('marginal_high')
        batch_op.drop_column('marginal_low')
