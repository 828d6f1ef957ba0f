"""ORM models, one module per aggregate; import them all so Alembic sees the full metadata."""

from portal.models.audit import AuditLog
from portal.models.backup import Backup
from portal.models.canned_reply import CannedReply
from portal.models.export import Export, TrendDaily
from portal.models.notification import Notification, NotificationSetting
from portal.models.outbox import OutboxMessage
from portal.models.saved_view import SavedView
from portal.models.service_request import Attachment, Category, Comment, RequestTally, ServiceRequest
from portal.models.sla import (
    BusinessCalendarRecord,
    Holiday,
    SlaDefinition,
    SlaEvent,
    SlaExemption,
    SlaMetric,
    SlaRollupAgent,
    SlaRollupBreach,
    SlaRollupTarget,
)
from portal.models.user import ApiToken, RecoveryCode, User
from portal.models.user_session import UserSession

__all__ = [
    "ApiToken", "Attachment", "AuditLog", "Backup", "BusinessCalendarRecord", "CannedReply", "Category", "Comment",
    "Export", "Holiday",
    "Notification", "NotificationSetting", "OutboxMessage", "RecoveryCode", "RequestTally", "SavedView",
    "ServiceRequest", "SlaDefinition", "SlaEvent", "SlaExemption", "SlaMetric",
    "SlaRollupAgent", "SlaRollupBreach", "SlaRollupTarget", "TrendDaily", "User", "UserSession",
]
