"""job leases, person locks, turn log: state that several instances share

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_jobs_person", "jobs", ["team_id", "user_id", "id"])
    op.create_table(
        "person_locks",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    op.create_table(
        "turn_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_turn_log_person", "turn_log", ["team_id", "user_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_turn_log_person", table_name="turn_log")
    op.drop_table("turn_log")
    op.drop_table("person_locks")
    op.drop_index("ix_jobs_person", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lease_token")
        batch.drop_column("lease_until")
        batch.drop_column("owner")
