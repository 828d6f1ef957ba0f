"""Service requests: `queries` reads (visibility, filters, pages), `commands` changes (one unit of
work each, version-checked), `timeline` tells what happened. Callers use this package's names."""

from portal.services.attachments import get_attachment, request_attachments
from portal.services.requests.commands import (
    REPLY_STATUSES,
    REQUEST_AUDIT_FIELDS,
    add_comment,
    assign,
    change_status,
    check_new_request,
    create_request,
    follow_up_title,
    lock_request,
    open_follow_up,
    parse_version,
    reply_statuses,
    update_request,
)
from portal.services.requests.queries import (
    CURSOR_MAX,
    SEARCH_MAX,
    SORTS,
    STATUS_ANY,
    STATUS_GROUPS,
    RequestFilters,
    date_range_value,
    describe_date_range,
    follow_ups_of,
    get_request,
    last_change,
    latest_change,
    list_categories,
    list_requests,
    next_in_list,
    parse_filters,
    sees_any_request,
    visible_requests,
)
from portal.services.requests.timeline import Timeline, TimelineEntry, older_entries, timeline, visible_comments

__all__ = [
    "CURSOR_MAX", "REPLY_STATUSES", "REQUEST_AUDIT_FIELDS", "SEARCH_MAX", "SORTS", "STATUS_ANY", "STATUS_GROUPS",
    "RequestFilters", "date_range_value", "describe_date_range",
    "Timeline", "TimelineEntry", "add_comment", "assign", "change_status", "check_new_request", "create_request",
    "follow_up_title", "follow_ups_of", "get_attachment", "get_request", "last_change", "latest_change",
    "list_categories",
    "list_requests", "next_in_list", "lock_request", "older_entries", "open_follow_up", "parse_filters",
    "parse_version",
    "reply_statuses", "request_attachments", "sees_any_request", "timeline", "update_request", "visible_comments",
    "visible_requests",
]
