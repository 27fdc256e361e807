"""look-up indexes: AEs by case-folded PT (cohort rules), the notification log by alert (delivery)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_adverse_event_pt_folded", "adverse_event", [sa.text("lower(aedecod)")])
    op.create_index("ix_notification_log_alert_key", "notification_log", ["alert_key"])


def downgrade() -> None:
    op.drop_index("ix_notification_log_alert_key", table_name="notification_log")
    op.drop_index("ix_adverse_event_pt_folded", table_name="adverse_event")
