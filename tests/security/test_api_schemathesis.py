"""Every operation of the served OpenAPI document, fuzzed by schemathesis: never a 5xx.

The document is loaded from the app itself (WSGI, no server); every call carries a real bearer
token of an admin, so each operation is reached past its authentication. A world of real rows
(requests, a definition, an exemption, a comment) gives the second pass ids that name things that
exist, so the bodies reach the services instead of stopping at a 404.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

EXAMPLES = 10  # per operation and generation mode; the whole test stays well under a minute
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # Flask's <int:request_id> is OpenAPI's {request_id}
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture()
def world(app, make):
    """An admin, and the rows a generated id may name."""
    admin = make.user("admin")
    requester = make.user("requester")
    sla = make.sla()
    requests = [make.request(requester, title=f"Printer {n}") for n in range(3)]
    exemption = make.exemption(admin, requests[0].id)
    make.comment(admin, requests[0].id, "Looking at it.")
    return SimpleNamespace(admin=admin, requester=requester, requests=requests, sla=sla, exemption=exemption)


def _openapi_path(rule: str) -> str:
    return RULE_ARG.sub(r"{\1}", rule)


class TokenKeeper:
    """A live bearer token of `user`; a new one when a fuzzed DELETE revoked it."""

    def __init__(self, app, make, user):
        self.app, self.make, self.user = app, make, user
        self.raw = make.token(user)

    def header(self) -> dict[str, str]:
        from portal.services import users

        with self.app.app_context():
            if users.user_for_token(self.raw) is None:
                self.raw = self.make.token(self.user)
        return {"Authorization": f"Bearer {self.raw}"}


def _fuzz(operation, keeper: TokenKeeper, failures: list[str], statuses: dict, **strategy_kwargs) -> None:
    """Run EXAMPLES cases of each generation mode against one operation; collect what the checks refuse."""
    for mode in MODES:
        _fuzz_mode(operation, mode, keeper, failures, statuses, **strategy_kwargs)


def _fuzz_mode(operation, mode: GenerationMode, keeper: TokenKeeper, failures: list[str], statuses: dict,
               **strategy_kwargs) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, **strategy_kwargs))
    def run(case):
        response = case.call(headers=keeper.header())
        statuses.setdefault(operation.label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # noqa: BLE001 - gather every operation's failures, then report them all
            failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")

    run()


def test_schemathesis_every_operation_answers_without_a_server_error(app, make, world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    keeper = TokenKeeper(app, make, world.admin)
    real_ids = {"request_id": world.requests[0].id, "definition_id": world.sla.definition_id,
                "exemption_id": world.exemption}
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:
        _fuzz(operation, keeper, failures, statuses)  # ids as generated: mostly things that do not exist
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        if names and names <= set(real_ids):
            _fuzz(operation, keeper, failures, statuses, path_parameters={n: real_ids[n] for n in names})

    assert not failures, "\n\n".join(failures)
    assert len(statuses) == len(operations) >= 20
    # The token got the calls past authentication: operations answered with their own successes.
    succeeded = {label for label, codes in statuses.items() if any(200 <= c < 300 for c in codes)}
    assert {"GET /api/v1/service-requests", "GET /api/v1/service-requests/{request_id}",
            "POST /api/v1/service-requests/{request_id}/comments", "PATCH /api/v1/sla/definitions/{definition_id}",
            "GET /api/dashboard/admin/sla-breaches"} <= succeeded, statuses


def test_schemathesis_document_loads_with_every_operation(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    labels = {result.ok().label for result in schema.get_all_operations()}
    routes = {f"{method} {_openapi_path(rule.rule)}"
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    # Schemathesis leaves out the operation that serves the document itself.
    assert labels == routes - {"GET /api/v1/openapi.json"}
