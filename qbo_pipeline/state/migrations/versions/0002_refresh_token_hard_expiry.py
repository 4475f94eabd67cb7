"""Record Intuit's hard maximum lifetime of each realm's refresh token.

The token endpoint reports it as `x_refresh_token_hard_expires_in` beside the rolling
`x_refresh_token_expires_in`; a refresh token dies at the earlier of the two. Existing rows
get NULL (unknown) until their next refresh reports it.

Revision ID: 0002_refresh_token_hard_expiry
Revises: 0001_baseline
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from qbo_pipeline.state.models import UtcDateTime

revision = "0002_refresh_token_hard_expiry"
down_revision: str | None = "0001_baseline"
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("qbo_tokens",
                  sa.Column("refresh_token_hard_expires_at", UtcDateTime(), nullable=True),
                  schema=op.get_context().version_table_schema)


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot drop a column in place.
    with op.batch_alter_table("qbo_tokens",
                              schema=op.get_context().version_table_schema) as batch:
        batch.drop_column("refresh_token_hard_expires_at")
