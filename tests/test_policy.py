"""The one access policy: who holds which permission, and what a refusal says."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from portal import policy
from portal.services.errors import Conflict, Forbidden

ROLES = ("requester", "agent", "manager", "admin")


def person(role: str, active: bool = True) -> SimpleNamespace:
    return SimpleNamespace(id=7, role=role, active=active, is_authenticated=True)


@pytest.mark.parametrize("permission", sorted(policy.PERMISSIONS))
def test_each_permission_belongs_to_its_role_and_those_above(permission):
    least = policy.PERMISSIONS[permission][0]
    held = [role for role in ROLES if policy.can(person(role), permission)]
    assert held == list(ROLES[ROLES.index(least):])


@pytest.mark.parametrize("permission", sorted(policy.PERMISSIONS))
def test_the_system_holds_every_permission_and_nobody_else_without_a_role(permission):
    assert policy.can(policy.SYSTEM, permission)
    assert not policy.can(None, permission)
    assert not policy.can(person("admin", active=False), permission)
    assert not policy.can(SimpleNamespace(is_authenticated=False, active=True, role="admin"), permission)


def test_require_refuses_with_the_permissions_own_message():
    with pytest.raises(Forbidden) as caught:
        policy.require(person("agent"), "sla.exempt")
    assert caught.value.message == "Only managers and admins can grant or revoke SLA exemptions."
    policy.require(person("manager"), "sla.exempt")  # no error


def test_text_edits_staff_always_requester_only_their_own_open_request():
    assert policy.may_edit_text(person("agent"), requester_id=1, status="closed")
    assert policy.may_edit_text(person("requester"), requester_id=7, status="waiting_on_customer")
    assert not policy.may_edit_text(person("requester"), requester_id=8, status="open")
    with pytest.raises(Conflict, match="reopen it first"):
        policy.require_text_edit(person("requester"), requester_id=7, status="resolved")
    with pytest.raises(Forbidden):
        policy.require_text_edit(person("requester"), requester_id=8, status="open")
