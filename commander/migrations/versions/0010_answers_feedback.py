"""answers, feedback votes, reasoning effort

Revision ID: 0010
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistants") as batch:
        batch.add_column(sa.Column("reasoning_effort", sa.String(length=20), nullable=True))
    op.create_table(
        "answers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("assistant_name", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=False),
        sa.Column("response_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("stop_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_answers_thread", "answers", ["team_id", "user_id", "channel", "thread_ts", "status"]
    )
    op.create_index("ix_answers_created", "answers", ["created_at"])
    op.create_table(
        "feedback_votes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("answer_id", sa.String(length=32), nullable=False),
        sa.Column("voter_team", sa.String(length=32), nullable=False),
        sa.Column("voter_user", sa.String(length=32), nullable=False),
        sa.Column("vote", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("voted_ts", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("answer_id", "voter_team", "voter_user", name="uq_vote"),
    )
    op.create_index("ix_feedback_votes_answer_id", "feedback_votes", ["answer_id"])


def downgrade() -> None:
    op.drop_table("feedback_votes")
    op.drop_table("answers")
    with op.batch_alter_table("assistants") as batch:
        batch.drop_column("reasoning_effort")
