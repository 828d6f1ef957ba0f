"""Error tracking: with SENTRY_DSN set, unhandled exceptions, logged errors (database errors and
5xx included) and failed jobs go to Sentry, with the environment, release and correlation id, and
no personal data beyond the user id."""

from __future__ import annotations

from typing import Any

from portal.logs import scrub
from portal.observability import current_request_context

_STARTED: list[str] = []


def _before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Keep the user's id only, tag the correlation id, redact secrets anywhere in the event."""
    from portal.logs import user_id

    known = user_id()
    event["user"] = {"id": str(known)} if known is not None else {}
    correlation_id = current_request_context().correlation_id
    if correlation_id:
        event.setdefault("tags", {})["correlation_id"] = correlation_id
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
        request.pop("data", None)
        request["query_string"] = ""
        event["request"] = scrub(request)
    for key in ("extra", "contexts", "breadcrumbs"):
        if key in event:
            event[key] = scrub(event[key])
    return event


def init(config: dict) -> bool:
    """Start the Sentry SDK when SENTRY_DSN is set (once per process); True when it is on."""
    dsn = config.get("SENTRY_DSN")
    if not dsn:
        return False
    if dsn in _STARTED:
        return True
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration
    from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration

    from portal import __version__

    sentry_sdk.init(
        dsn=dsn,
        environment=config.get("APP_ENV"),
        release=f"service-portal@{__version__}",
        integrations=[FlaskIntegration(), RqIntegration(), SqlalchemyIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        traces_sample_rate=config.get("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        before_send=_before_send,
    )
    _STARTED.append(dsn)
    return True
