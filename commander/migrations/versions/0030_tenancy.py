"""multi-workspace installs, departures, usage, retention notices

Revision ID: 0030
Revises: 0003
Create Date: 2026-12-02

Existing rows are left as they are: they were keyed by workspace id, which is still the
owner scope of a workspace install (see commander/store/tenancy_models.py).
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0010"
branch_labels = None
depends_on = None


def _installation_columns(*, with_user: bool) -> list[sa.Column]:
    """slack_sdk 3.x's installation (with_user) and bot tables, frozen here."""
    c, s32, s200 = sa.Column, sa.String(length=32), sa.String(length=200)
    columns = [
        c("id", sa.Integer(), primary_key=True, autoincrement=True),
        c("client_id", s32, nullable=False),
        c("app_id", s32, nullable=False),
        c("enterprise_id", s32),
        c("enterprise_name", s200),
    ]
    if with_user:
        columns.append(c("enterprise_url", s200))
    columns += [
        c("team_id", s32),
        c("team_name", s200),
        c("bot_token", s200),
        c("bot_id", s32),
        c("bot_user_id", s32),
        c("bot_scopes", sa.String(length=1000)),
        c("bot_refresh_token", s200),
        c("bot_token_expires_at", sa.DateTime()),
    ]
    if with_user:
        columns += [
            c("user_id", s32, nullable=False),
            c("user_token", s200),
            c("user_scopes", sa.String(length=1000)),
            c("user_refresh_token", s200),
            c("user_token_expires_at", sa.DateTime()),
            *[
                c(f"incoming_webhook_{name}", s200)
                for name in ("url", "channel", "channel_id", "configuration_url")
            ],
        ]
    columns.append(c("is_enterprise_install", sa.Boolean(), nullable=False))
    if with_user:
        columns.append(c("token_type", s32))
    columns.append(c("installed_at", sa.DateTime(), nullable=False))
    return columns


def upgrade() -> None:
    op.create_table("slack_installations", *_installation_columns(with_user=True))
    op.create_index(
        "slack_installations_idx",
        "slack_installations",
        ["client_id", "enterprise_id", "team_id", "user_id", "installed_at"],
    )
    op.create_table("slack_bots", *_installation_columns(with_user=False))
    op.create_index(
        "slack_bots_idx", "slack_bots", ["client_id", "enterprise_id", "team_id", "installed_at"]
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("state", sa.String(length=200), nullable=False),
        sa.Column("expire_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "departures",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purge_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )
    counters = [
        "turns",
        "file_search_calls",
        "code_interpreter_calls",
        "web_search_calls",
        "function_calls",
        "files_added",
    ]
    tokens = ["input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"]
    op.create_table(
        "usage_days",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("workspace", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in tokens],
        *[sa.Column(name, sa.Integer(), nullable=False) for name in counters],
        sa.PrimaryKeyConstraint("scope", "user_id", "day", "workspace", "model"),
    )
    op.create_table(
        "retention_notices",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "user_id"),
    )


def downgrade() -> None:
    for name in (
        "retention_notices",
        "usage_days",
        "departures",
        "slack_oauth_states",
        "slack_bots",
        "slack_installations",
    ):
        op.drop_table(name)
