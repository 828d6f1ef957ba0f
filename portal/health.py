"""Health endpoints for load balancers, orchestrators and monitors: public, uncached, CSRF-free.

- `/health` — the operations guide's JSON (status, timestamp, components, version, environment):
  200 while the database answers (Redis, workers or scheduler down only make it "degraded"),
  503 when it does not. Answers within about 1.5 s whatever a component does.
- `/health/live` — the process answers; touches nothing.
- `/health/ready` — database reachable and migrated to this code's head, Redis reachable; else 503
  naming what is missing.

The probes live in portal/services/health.py (shared with `flask doctor` and the status page).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from portal.services import health

bp = Blueprint("health", __name__, url_prefix="/health")


def _answer(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("", strict_slashes=False)
def health_status():
    """The guide's health JSON; 503 only when the database is unhealthy."""
    body, status = health.health_report()
    return _answer(body, status)


@bp.get("/live")
def live():
    """The process is up and serving requests (no dependency is asked)."""
    return _answer({"status": "alive"}, 200)


@bp.get("/ready")
def ready():
    """Ready for traffic: database reachable and at the migrations' head, Redis reachable."""
    body, status = health.readiness()
    return _answer(body, status)


def init_health(app) -> None:
    """Register the blueprint: exempt from CSRF and from rate limits (monitors poll it often)."""
    from portal.extensions import csrf, limiter

    app.register_blueprint(bp)
    csrf.exempt(bp)
    limiter.exempt(bp)
