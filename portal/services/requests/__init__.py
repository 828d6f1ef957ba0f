"""Service requests: `queries` reads (visibility, filters, pages), `commands` changes (one unit of
work each, version-checked), `timeline` tells what happened. Callers use this package's names."""

from portal.services.attachments import get_attachment, request_attachments
from portal.services.requests.commands import (
    REQUEST_AUDIT_FIELDS,
    add_comment,
    assign,
    change_status,
    create_request,
    lock_request,
    parse_version,
    update_request,
)
from portal.services.requests.queries import (
    SEARCH_MAX,
    SORTS,
    STATUS_GROUPS,
    RequestFilters,
    get_request,
    last_change,
    list_categories,
    list_requests,
    parse_filters,
    visible_requests,
)
from portal.services.requests.timeline import Timeline, TimelineEntry, older_entries, timeline, visible_comments

__all__ = [
    "REQUEST_AUDIT_FIELDS", "SEARCH_MAX", "SORTS", "STATUS_GROUPS", "RequestFilters", "Timeline", "TimelineEntry",
    "add_comment", "assign", "change_status", "create_request", "get_attachment", "get_request", "last_change",
    "list_categories", "list_requests", "lock_request", "older_entries", "parse_filters", "parse_version",
    "request_attachments", "timeline", "update_request", "visible_comments", "visible_requests",
]
