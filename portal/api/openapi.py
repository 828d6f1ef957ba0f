"""The OpenAPI 3 document for API v1, kept true by tests/api/test_openapi.py."""

from __future__ import annotations

from portal import __version__
from portal.domain.workflow import PRIORITIES, STATUSES


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {400: "Malformed JSON or body not an object", 401: "Missing, invalid or expired token",
            403: "Not allowed for this role", 404: "No such request (or not visible to you)",
            409: "Conflicts with the current state (e.g. a status move the workflow refuses)",
            422: "Invalid values; `fields` names each one", 429: "Too many attempts"}
    return {str(c): {"description": text[c], **_json(_ref("Error"))} for c in codes}


TOKEN_CODE = "With two-factor on: the 6 digits of the authenticator app, or a recovery code"
REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "integer"}}
DEFINITION_ID = {"name": "definition_id", "in": "path", "required": True, "schema": {"type": "integer"}}
EXEMPTION_ID = {"name": "exemption_id", "in": "path", "required": True, "schema": {"type": "integer"}}
DAYS = {"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 365, "default": 30}}
LIST_PARAMS = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": [*STATUSES, "active", "done"]},
     "description": "A status, or `active` (open, in progress, waiting) or `done` (resolved, closed)."},
    {"name": "priority", "in": "query", "schema": {"type": "string", "enum": list(PRIORITIES)}},
    {"name": "category", "in": "query", "schema": {"type": "string"}, "description": "A category code."},
    {"name": "assignee", "in": "query", "schema": {"type": "string"},
     "description": "`me`, `none` (unassigned) or a user id."},
    *[{"name": name, "in": "query", "schema": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d\.\.\d{4}-\d\d-\d\d$"},
       "description": f"{what}, UTC days `first..last` (both included, at most 366 days), e.g. "
                      "`2026-03-02..2026-03-08`."}
      for name, what in (("created", "Raised in a date range"), ("resolved", "Resolved in a date range"),
                         ("breached", "With an SLA target breached in a date range"))],
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Words to find (full-text, each word also as a prefix) in the title, description or "
                    "comments you can read; `#123` finds request 123 alone."},
    {"name": "sort", "in": "query",
     "schema": {"type": "string", "enum": ["relevance", "newest", "oldest", "updated", "priority", "status"]},
     "description": "Default: `relevance` while searching (newest first past 5,000 matches), else `newest`."},
    {"name": "after", "in": "query", "schema": {"type": "string"},
     "description": "`next_cursor` of the page before: the next page (the same cost at any depth)."},
    {"name": "before", "in": "query", "schema": {"type": "string"},
     "description": "`prev_cursor` of the page after: the previous page."},
    {"name": "last", "in": "query", "schema": {"type": "integer", "enum": [1]}, "description": "The last page."},
    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "A page number (OFFSET paging: slower the deeper it goes; prefer the cursors)."},
    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
]

USER_REF = {
    "type": "object", "nullable": True, "required": ["id", "name"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                   "email": {"type": "string", "description": "Only to staff callers, and to you about yourself"}},
}
TIME = {"type": "string", "format": "date-time", "nullable": True}

SCHEMAS = {
    "ApiToken": {
        "type": "object", "required": ["id", "user_id", "created_at", "expires_at", "last_used_at", "current"],
        "properties": {"id": {"type": "integer"}, "user_id": {"type": "integer"}, "created_at": TIME,
                       "expires_at": TIME, "last_used_at": TIME,
                       "current": {"type": "boolean", "description": "The token this request carries"}},
    },
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "correlation_id": {"type": "string",
                                   "description": "The request's X-Correlation-ID: quote it when reporting the error"},
                "follow_up_url": {"type": "string",
                                  "description": "With `request_closed`: POST the reply there to open a follow-up"},
            },
        }},
    },
    "ServiceRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "title": {"type": "string"}, "description": {"type": "string"},
            "category": {"type": "string"}, "priority": {"type": "string", "enum": list(PRIORITIES)},
            "status": {"type": "string", "enum": list(STATUSES)},
            "requester": USER_REF, "assignee": USER_REF,
            "created_at": TIME, "updated_at": TIME, "first_response_at": TIME, "resolved_at": TIME,
            "closed_at": TIME,
            "follow_up_of_id": {"type": "integer", "nullable": True,
                                "description": "The closed request this one follows up"},
            "version": {"type": "integer", "minimum": 1,
                        "description": "Goes up with every change; send it back (or the ETag) to refuse stale writes"},
        },
    },
    "ServiceRequestDetail": {
        "allOf": [_ref("ServiceRequest"), {"type": "object", "properties": {
            "comments": {"type": "array", "items": _ref("Comment")},
            "follow_up_ids": {"type": "array", "items": {"type": "integer"},
                              "description": "The follow-ups of this request you can see, oldest first"}}}],
    },
    "Comment": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "author": USER_REF, "body": {"type": "string"},
                       "internal": {"type": "boolean"}, "created_at": TIME},
    },
    "NewServiceRequest": {
        "type": "object", "additionalProperties": False, "required": ["title", "description", "category"],
        "properties": {
            "title": {"type": "string", "maxLength": 200}, "description": {"type": "string", "maxLength": 20000},
            "category": {"type": "string"}, "priority": {"type": "string", "enum": list(PRIORITIES)},
        },
    },
    "ServiceRequestPatch": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "properties": {
            "title": {"type": "string", "maxLength": 200}, "description": {"type": "string", "maxLength": 20000},
            "category": {"type": "string"}, "priority": {"type": "string", "enum": list(PRIORITIES)},
            "status": {"type": "string", "enum": list(STATUSES)},
            "assignee_id": {"type": "integer", "nullable": True},
            "version": {"type": "integer", "minimum": 1,
                        "description": "The version you read; a change made since is refused with 409"},
        },
    },
    "SlaDefinition": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "category": {"type": "string"},
            "priority": {"type": "string", "enum": list(PRIORITIES)},
            "response_time_hours": {"type": "number"}, "resolution_time_hours": {"type": "number"},
            "is_active": {"type": "boolean"}, "calendar_id": {"type": "integer", "nullable": True},
            "pause_statuses": {"type": "array", "items": {"type": "string"}},
            "at_risk_percent": {"type": "integer"}, "created_at": TIME, "updated_at": TIME,
        },
    },
    "NewSlaDefinition": {
        "type": "object", "additionalProperties": False,
        "required": ["category", "priority", "response_time_hours", "resolution_time_hours"],
        "properties": {
            "category": {"type": "string"}, "priority": {"type": "string", "enum": list(PRIORITIES)},
            "response_time_hours": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 8760},
            "resolution_time_hours": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 8760,
                                      "description": "Not shorter than the response time."},
            "is_active": {"type": "boolean"}, "calendar_id": {"type": "integer", "nullable": True,
                                                              "description": "Business calendar; null counts 24x7."},
            "pause_statuses": {"type": "array", "items": {"type": "string"}},
            "at_risk_percent": {"type": "integer", "minimum": 1, "maximum": 99},
        },
    },
    "SlaDefinitionPatch": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "response_time_hours": {"type": "number"}, "resolution_time_hours": {"type": "number"},
            "is_active": {"type": "boolean"}, "calendar_id": {"type": "integer", "nullable": True},
            "pause_statuses": {"type": "array", "items": {"type": "string"}},
            "at_risk_percent": {"type": "integer", "minimum": 1, "maximum": 99},
            "apply_to_open": {"type": "boolean",
                              "description": "Recalculate open requests' clocks under the new rules."},
        },
    },
    "SlaMetric": {
        "type": "object",
        "properties": {
            "status": {"type": "string"}, "definition_id": {"type": "integer", "nullable": True},
            "response_time_hours": {"type": "number", "nullable": True},
            "resolution_time_hours": {"type": "number", "nullable": True},
            "started_at": TIME, "response_due_at": TIME, "resolution_due_at": TIME,
            "response_warn_at": TIME, "resolution_warn_at": TIME, "responded_at": TIME, "resolved_at": TIME,
            "paused_seconds": {"type": "integer"}, "paused_since": TIME,
            "response_sla_met": {"type": "boolean", "nullable": True},
            "resolution_sla_met": {"type": "boolean", "nullable": True},
            "response_at_risk": {"type": "boolean"}, "resolution_at_risk": {"type": "boolean"},
            "is_breached": {"type": "boolean"},
            "breach_type": {"type": "string", "enum": ["response", "resolution", "both"], "nullable": True},
        },
    },
    "SlaExemption": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "exemption_type": {"type": "string", "enum": ["response", "resolution", "both"]},
            "reason": {"type": "string"}, "duration_hours": {"type": "number", "nullable": True},
            "granted_by": USER_REF, "granted_at": TIME, "expires_at": TIME, "revoked_at": TIME,
            "revoked_by": USER_REF, "active": {"type": "boolean"},
        },
    },
    "NewSlaExemption": {
        "type": "object", "additionalProperties": False, "required": ["exemption_type", "reason"],
        "properties": {
            "exemption_type": {"type": "string", "enum": ["response", "resolution", "both"]},
            "reason": {"type": "string", "maxLength": 2000},
            "duration_hours": {"type": "number", "nullable": True, "description": "null: until revoked"},
        },
    },
    "NewComment": {
        "type": "object", "additionalProperties": False, "required": ["body"],
        "properties": {"body": {"type": "string", "maxLength": 20000}, "internal": {"type": "boolean"}},
    },
    "NewFollowUp": {
        "type": "object", "additionalProperties": False, "required": ["description"],
        "properties": {"description": {"type": "string", "maxLength": 20000,
                                       "description": "What the follow-up is about (the refused reply)"}},
    },
}

PATHS = {
    "/api/v1/auth/token": {
        "post": {
            "summary": "Exchange email and password for a bearer token", "security": [],
            "requestBody": {"required": True, **_json({
                "type": "object", "required": ["email", "password"], "additionalProperties": False,
                "properties": {"email": {"type": "string"}, "password": {"type": "string"},
                               "code": {"type": "string", "description": TOKEN_CODE}}})},
            "responses": {"201": {"description": "A token", **_json({
                "type": "object", "properties": {"token": {"type": "string"}, "token_type": {"type": "string"},
                                                  "expires_at": {"type": "string", "format": "date-time"}}})},
                          **_errors(400, 401, 403, 409, 422, 429)},
        },
        "delete": {
            "summary": "Revoke the token this request carries (sign out of the API)",
            "responses": {"204": {"description": "Revoked"}, **_errors(401)},
        },
    },
    "/api/v1/auth/tokens": {
        "get": {
            "summary": "Your live tokens with their last use (admins: anyone's, with user_id)",
            "parameters": [{"name": "user_id", "in": "query", "schema": {"type": "integer"},
                            "description": "Admins only: list this person's tokens."}],
            "responses": {"200": {"description": "Newest first", **_json({
                "type": "object", "properties": {"items": {"type": "array", "items": _ref("ApiToken")}}})},
                          **_errors(401, 403, 422)},
        },
    },
    "/api/v1/auth/tokens/{token_id}": {
        "delete": {
            "summary": "Revoke one of your tokens (admins: anyone's); it stops working at once",
            "parameters": [{"name": "token_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"204": {"description": "Revoked"}, **_errors(401, 404)},
        },
    },
    "/api/v1/service-requests": {
        "get": {
            "summary": "List the requests you can see", "parameters": LIST_PARAMS,
            "responses": {"200": {"description": "One page", **_json({
                "type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("ServiceRequest")},
                    "page": {"type": "integer"}, "per_page": {"type": "integer"},
                    "total": {"type": "integer", "nullable": True,
                              "description": "null when more than 10,000 match (see total_more_than)"},
                    "total_more_than": {"type": "integer", "description": "Only when total is null"},
                    "pages": {"type": "integer", "nullable": True},
                    "next_cursor": {"type": "string", "nullable": True,
                                    "description": "Pass as `after` for the next page; null on the last"},
                    "prev_cursor": {"type": "string", "nullable": True,
                                    "description": "Pass as `before` for the previous page; null on the first"}}})},
                          **_errors(401, 422)},
        },
        "post": {
            "summary": "Raise a request",
            "requestBody": {"required": True, **_json(_ref("NewServiceRequest"))},
            "responses": {"201": {"description": "Created", **_json(_ref("ServiceRequest"))},
                          **_errors(400, 401, 422)},
        },
    },
    "/api/v1/service-requests/{request_id}": {
        "get": {
            "summary": "One request with its visible comments", "parameters": [REQUEST_ID],
            "responses": {"200": {"description": "The request", **_json(_ref("ServiceRequestDetail"))},
                          **_errors(401, 404)},
        },
        "patch": {
            "summary": "Change fields, status or assignee (all or nothing)",
            "description": "Send `If-Match` with the ETag of GET (or a `version` field) and a change made "
                           "meanwhile by someone else is refused with 409 `stale_version` (with `current_version`, "
                           "`changed_by` and `changed_at`) instead of being overwritten.",
            "parameters": [REQUEST_ID, {"name": "If-Match", "in": "header", "required": False,
                                        "schema": {"type": "string"}, "description": 'The ETag from GET, e.g. "3"'}],
            "requestBody": {"required": True, **_json(_ref("ServiceRequestPatch"))},
            "responses": {"200": {"description": "Updated", **_json(_ref("ServiceRequest"))},
                          **_errors(400, 401, 403, 404, 409, 422)},
        },
    },
    "/api/v1/service-requests/{request_id}/comments": {
        "post": {
            "summary": "Add a reply (staff may add internal notes)", "parameters": [REQUEST_ID],
            "description": "A requester's reply reopens a resolved request. To a closed request it is refused "
                           "with 409 `request_closed` and nothing is saved; `follow_up_url` says where to POST the "
                           "text to open a follow-up request linked to it instead.",
            "requestBody": {"required": True, **_json(_ref("NewComment"))},
            "responses": {"201": {"description": "Created", **_json(_ref("Comment"))},
                          **_errors(400, 401, 403, 404, 422),
                          "409": {"description": "The request is closed (`request_closed`): open a follow-up",
                                  **_json(_ref("Error"))}},
        },
    },
    "/api/v1/service-requests/{request_id}/follow-ups": {
        "post": {
            "summary": "Open a follow-up to your closed request",
            "description": "A new request raised by you, linked to the closed one (`follow_up_of_id`), with its "
                           "category and priority and the title \"Follow-up to #N: <title>\". Only the requester "
                           "of the closed request may; 409 when it is not closed (reply on it instead).",
            "parameters": [REQUEST_ID],
            "requestBody": {"required": True, **_json(_ref("NewFollowUp"))},
            "responses": {"201": {"description": "Created", **_json(_ref("ServiceRequest"))},
                          **_errors(400, 401, 403, 404, 409, 422)},
        },
    },
    "/api/v1/sla/definitions": {
        "get": {"summary": "List SLA definitions (staff)",
                "responses": {"200": {"description": "Definitions", **_json({"type": "object", "properties": {
                    "definitions": {"type": "array", "items": _ref("SlaDefinition")}}})}, **_errors(401, 403)}},
        "post": {"summary": "Create an SLA definition (admin)",
                 "requestBody": {"required": True, **_json(_ref("NewSlaDefinition"))},
                 "responses": {"201": {"description": "Created", **_json(_ref("SlaDefinition"))},
                               **_errors(400, 401, 403, 409, 422)}},
    },
    "/api/v1/sla/definitions/{definition_id}": {
        "patch": {"summary": "Change an SLA definition (admin); optionally rebuild open clocks",
                  "parameters": [DEFINITION_ID],
                  "requestBody": {"required": True, **_json(_ref("SlaDefinitionPatch"))},
                  "responses": {"200": {"description": "Updated", **_json(_ref("SlaDefinition"))},
                                **_errors(400, 401, 403, 404, 409, 422)}},
    },
    "/api/v1/service-requests/{request_id}/sla-metrics": {
        "get": {"summary": "The request's SLA clock", "parameters": [REQUEST_ID],
                "responses": {"200": {"description": "Metrics", **_json({"type": "object", "properties": {
                    "sla_metrics": {"type": "array", "items": _ref("SlaMetric")}}})}, **_errors(401, 404)}},
    },
    "/api/v1/service-requests/{request_id}/sla-exemptions": {
        "get": {"summary": "The request's SLA exemptions (staff)", "parameters": [REQUEST_ID],
                "responses": {"200": {"description": "Exemptions", **_json({"type": "object", "properties": {
                    "exemptions": {"type": "array", "items": _ref("SlaExemption")},
                    "active": {"type": "array", "items": _ref("SlaExemption")}}})}, **_errors(401, 403, 404)}},
        "post": {"summary": "Grant an SLA exemption (managers, admins)", "parameters": [REQUEST_ID],
                 "requestBody": {"required": True, **_json(_ref("NewSlaExemption"))},
                 "responses": {"201": {"description": "Granted", **_json(_ref("SlaExemption"))},
                               **_errors(400, 401, 403, 404, 409, 422)}},
    },
    "/api/v1/service-requests/{request_id}/sla-exemptions/{exemption_id}/revoke": {
        "post": {"summary": "Revoke an SLA exemption now (managers, admins)", "parameters": [REQUEST_ID, EXEMPTION_ID],
                 "responses": {"200": {"description": "Revoked", **_json(_ref("SlaExemption"))},
                               **_errors(401, 403, 404, 409)}},
    },
    "/api/v1/analytics/sla-statistics": {
        "get": {"summary": "SLA breach statistics over the last `days` days (managers, admins)", "parameters": [DAYS],
                "responses": {"200": {"description": "Statistics", **_json({"type": "object", "properties": {
                    "days": {"type": "integer"}, "total_breaches": {"type": "integer"},
                    "response_breaches": {"type": "integer"}, "resolution_breaches": {"type": "integer"},
                    "breaches_by_priority": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "breaches_by_category": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "targets_met": {"type": "integer"}, "targets_decided": {"type": "integer"},
                    "compliance_rate": {"type": "number", "nullable": True}}})}, **_errors(401, 403, 422)}},
    },
    "/api/v1/analytics/sla-compliance": {
        "get": {"summary": "Share of SLA targets met per category, priority, agent and week (managers, admins)",
                "parameters": [{**DAYS, "schema": {**DAYS["schema"], "default": 90}}],
                "responses": {"200": {"description": "Compliance report"}, **_errors(401, 403, 422)}},
    },
    "/api/dashboard/admin/sla-breaches": {
        "get": {"summary": "Open requests breached or at risk, most overdue first (admins)",
                "parameters": [{"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                               {"name": "per_page", "in": "query",
                                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}},
                               {"name": "priority", "in": "query", "schema": {"type": "string"}},
                               {"name": "category", "in": "query", "schema": {"type": "string"}},
                               {"name": "assignee", "in": "query", "schema": {"type": "string"}},
                               {"name": "state", "in": "query",
                                "schema": {"type": "string", "enum": ["breached", "at_risk"]}},
                               {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
                               {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}}],
                "responses": {"200": {"description": "One page of rows"}, **_errors(401, 403, 422)}},
    },
    "/api/dashboard/admin/summary": {
        "get": {"summary": "Dashboard summary cards (admins)",
                "responses": {"200": {"description": "Open by status and priority, breached now, at risk, "
                                                     "30-day met rate"}, **_errors(401, 403)}},
    },
    "/api/v1/openapi.json": {
        "get": {"summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3 document"}}},
    },
}


def openapi_document() -> dict:
    """The whole API description."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Service Portal API", "version": __version__,
                 "description": "Service requests for helpdesk agents, managers and requesters."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
                       "schemas": SCHEMAS},
        "paths": PATHS,
    }
