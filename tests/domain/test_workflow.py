"""The status workflow: which moves are allowed, for whom, and what each move does to the timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.workflow import (
    REQUESTER_TRANSITIONS,
    STAFF_ROLES,
    STATUSES,
    SUGGESTED_NEXT,
    TRANSITIONS,
    Timestamps,
    TransitionError,
    action_label,
    allowed_transitions,
    apply_transition,
    check_transition,
    is_first_response,
    reply_outcome,
)

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
EMPTY = Timestamps(None, None, None)

# Hard-coded expectations, independent of the TRANSITIONS table.
EXPECTED_STAFF_MOVES = {
    ("open", "in_progress"), ("open", "waiting_on_customer"), ("open", "resolved"),
    ("in_progress", "open"), ("in_progress", "waiting_on_customer"), ("in_progress", "resolved"),
    ("waiting_on_customer", "open"), ("waiting_on_customer", "in_progress"), ("waiting_on_customer", "resolved"),
    ("resolved", "open"), ("resolved", "in_progress"), ("resolved", "closed"),
    ("closed", "open"),
}
EXPECTED_REQUESTER_MOVES = {("resolved", "closed"), ("resolved", "open")}  # closed is final: a follow-up
ALL_PAIRS = [(a, b) for a in STATUSES for b in STATUSES]


# ---------------------------------------------------------------- check_transition: staff

def test_workflow_hardcoded_staff_table_matches_transitions():
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == EXPECTED_STAFF_MOVES


@pytest.mark.parametrize("role", STAFF_ROLES)
@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_check_transition_staff_allows_exactly_the_workflow_moves(role, current, target):
    if (current, target) in EXPECTED_STAFF_MOVES:
        assert target in TRANSITIONS[current]
        check_transition(current, target, role)
    else:
        with pytest.raises(TransitionError) as info:
            check_transition(current, target, role)
        assert info.value.current == current
        assert info.value.target == target
        assert info.value.reason
        assert str(info.value) == info.value.reason


def test_check_transition_open_to_closed_refused_asking_to_resolve_first():
    with pytest.raises(TransitionError) as info:
        check_transition("open", "closed", "agent")
    assert "resolv" in info.value.reason.lower()
    assert "closed" in info.value.reason.lower()


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_check_transition_closed_to_open_is_a_reopen(role):
    check_transition("closed", "open", role)


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_check_transition_resolved_to_closed_allowed(role):
    check_transition("resolved", "closed", role)


@pytest.mark.parametrize("status", STATUSES)
def test_check_transition_same_status_refused_with_already_message(status):
    with pytest.raises(TransitionError, match="already"):
        check_transition(status, status, "agent")


@pytest.mark.parametrize("target", ["", "deleted", "OPEN", "Closed"])
def test_check_transition_unknown_target_refused(target):
    with pytest.raises(TransitionError, match="not a status"):
        check_transition("open", target, "admin")


@pytest.mark.parametrize(("current", "target"), [("closed", "in_progress"), ("closed", "resolved"),
                                                  ("in_progress", "closed"), ("waiting_on_customer", "closed")])
def test_check_transition_refusal_names_both_statuses(current, target):
    with pytest.raises(TransitionError) as info:
        check_transition(current, target, "manager")
    reason = info.value.reason.lower()
    assert current.replace("_", " ") in reason
    assert target.replace("_", " ") in reason


# ---------------------------------------------------------------- check_transition: requester

def test_workflow_hardcoded_requester_table_matches_requester_transitions():
    table = {(a, b) for a, targets in REQUESTER_TRANSITIONS.items() for b in targets}
    assert table == EXPECTED_REQUESTER_MOVES


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_check_transition_requester_only_closes_resolved_or_reopens(current, target):
    if (current, target) in EXPECTED_REQUESTER_MOVES:
        check_transition(current, target, "requester")
    else:
        with pytest.raises(TransitionError):
            check_transition(current, target, "requester")


@pytest.mark.parametrize("target", ["in_progress", "waiting_on_customer", "resolved"])
def test_check_transition_requester_cannot_work_a_request(target):
    with pytest.raises(TransitionError, match="Requesters can only"):
        check_transition("open", target, "requester")


def test_check_transition_requester_open_to_closed_explains_resolve_first():
    with pytest.raises(TransitionError, match="resolved first"):
        check_transition("open", "closed", "requester")


@pytest.mark.parametrize("role", ["", "guest", "Agent"])
def test_check_transition_unknown_role_gets_requester_rights(role):
    check_transition("resolved", "closed", role)
    with pytest.raises(TransitionError):
        check_transition("open", "in_progress", role)


def test_allowed_transitions_usual_next_step_first_then_workflow_order():
    assert allowed_transitions("open", "agent") == ["in_progress", "waiting_on_customer", "resolved"]
    assert allowed_transitions("in_progress", "agent") == ["resolved", "open", "waiting_on_customer"]
    assert allowed_transitions("waiting_on_customer", "agent") == ["in_progress", "open", "resolved"]
    assert allowed_transitions("resolved", "agent") == ["closed", "open", "in_progress"]
    assert allowed_transitions("closed", "admin") == ["open"]
    assert allowed_transitions("resolved", "requester") == ["closed", "open"]
    assert allowed_transitions("closed", "requester") == []  # final for them: a follow-up instead
    assert allowed_transitions("in_progress", "requester") == []


@pytest.mark.parametrize("role", ["agent", "requester"])
@pytest.mark.parametrize("current", STATUSES)
def test_allowed_transitions_lists_each_allowed_move_once(current, role):
    listed = allowed_transitions(current, role)
    assert len(listed) == len(set(listed))
    expected = EXPECTED_STAFF_MOVES if role == "agent" else EXPECTED_REQUESTER_MOVES
    assert set(listed) == {b for a, b in expected if a == current}


@pytest.mark.parametrize("current", STATUSES)
def test_suggested_next_is_an_allowed_staff_move(current):
    check_transition(current, SUGGESTED_NEXT[current], "agent")


@pytest.mark.parametrize(("current", "target", "label"), [
    ("open", "in_progress", "Start work"),
    ("in_progress", "resolved", "Resolve"),
    ("in_progress", "waiting_on_customer", "Wait on customer"),
    ("in_progress", "open", "Back to open"),
    ("resolved", "closed", "Close (confirm resolution)"),
    ("resolved", "open", "Reopen"),
    ("closed", "open", "Reopen"),
    ("resolved", "in_progress", "Reopen and work on it"),
])
def test_action_label_names_the_button(current, target, label):
    assert action_label(current, target) == label


# ---------------------------------------------------------------- apply_transition

def test_apply_transition_in_progress_sets_first_response_at():
    stamps = apply_transition("open", "in_progress", EMPTY, T0)
    assert stamps.first_response_at == T0
    assert stamps.resolved_at is None
    assert stamps.closed_at is None


def test_apply_transition_in_progress_never_overwrites_first_response_at():
    first = apply_transition("open", "in_progress", EMPTY, T0)
    back = apply_transition("in_progress", "open", first, T1)
    again = apply_transition("open", "in_progress", back, T2)
    assert back.first_response_at == T0
    assert again.first_response_at == T0


@pytest.mark.parametrize("target", ["waiting_on_customer", "resolved"])
def test_apply_transition_other_moves_do_not_set_first_response_at(target):
    assert apply_transition("open", target, EMPTY, T0).first_response_at is None


def test_apply_transition_resolved_sets_resolved_at():
    stamps = apply_transition("in_progress", "resolved", Timestamps(T0, None, None), T1)
    assert stamps == Timestamps(T0, T1, None)


def test_apply_transition_closed_sets_closed_at_and_keeps_resolved_at():
    resolved = Timestamps(T0, T1, None)
    stamps = apply_transition("resolved", "closed", resolved, T2)
    assert stamps == Timestamps(T0, T1, T2)


@pytest.mark.parametrize("target", ["open", "in_progress"])
def test_apply_transition_reopen_from_closed_clears_resolution(target):
    closed = Timestamps(T0, T1, T2)
    stamps = apply_transition("closed", target, closed, T2 + timedelta(hours=1))
    assert stamps.resolved_at is None
    assert stamps.closed_at is None
    assert stamps.first_response_at == T0


def test_apply_transition_reopen_from_resolved_clears_resolved_at():
    stamps = apply_transition("resolved", "open", Timestamps(None, T1, None), T2)
    assert stamps == Timestamps(None, None, None)


def test_apply_transition_does_not_mutate_its_input():
    before = Timestamps(T0, T1, None)
    apply_transition("resolved", "closed", before, T2)
    assert before == Timestamps(T0, T1, None)


# ---------------------------------------------------------------- is_first_response

@pytest.mark.parametrize("role", STAFF_ROLES)
def test_is_first_response_public_staff_comment_counts(role):
    assert is_first_response(role, internal=False, first_response_at=None) is True


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_is_first_response_internal_note_does_not_count(role):
    assert is_first_response(role, internal=True, first_response_at=None) is False


def test_is_first_response_requester_comment_does_not_count():
    assert is_first_response("requester", internal=False, first_response_at=None) is False


def test_is_first_response_only_the_first_counts():
    assert is_first_response("agent", internal=False, first_response_at=T0) is False


# ---------------------------------------------------------------- properties

def _walk(choices: list[int], role: str = "agent"):
    """Follow allowed moves from 'open', picking by index; yields (status, stamps) after each move."""
    status, stamps = "open", EMPTY
    now = T0
    path = [(status, stamps)]
    for pick in choices:
        options = allowed_transitions(status, role)
        if not options:
            break
        target = options[pick % len(options)]
        check_transition(status, target, role)  # the walk only uses allowed moves
        now += timedelta(minutes=5)
        stamps = apply_transition(status, target, stamps, now)
        status = target
        path.append((status, stamps))
    return path


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=30))
def test_apply_transition_property_timestamps_stay_consistent(choices):
    for status, stamps in _walk(choices):
        assert (stamps.closed_at is not None) == (status == "closed")
        assert (stamps.resolved_at is not None) == (status in ("resolved", "closed"))
        if stamps.closed_at is not None:
            assert stamps.resolved_at <= stamps.closed_at


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=30))
def test_apply_transition_property_first_response_never_changes_once_set(choices):
    first = None
    for status, stamps in _walk(choices):
        if first is not None:
            assert stamps.first_response_at == first
        elif stamps.first_response_at is not None:
            first = stamps.first_response_at
        if status == "in_progress":
            assert stamps.first_response_at is not None


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=30), st.sampled_from(["agent", "requester"]))
def test_apply_transition_property_mixed_roles_keep_consistency(choices, role):
    # A staff walk with a requester step wherever the requester has a move.
    status, stamps, now = "open", EMPTY, T0
    for i, pick in enumerate(choices):
        who = role if i % 2 else "agent"
        options = allowed_transitions(status, who) or allowed_transitions(status, "agent")
        target = options[pick % len(options)]
        now += timedelta(minutes=1)
        stamps = apply_transition(status, target, stamps, now)
        status = target
        assert (stamps.closed_at is not None) == (status == "closed")
        assert (stamps.resolved_at is not None) == (status in ("resolved", "closed"))


# ---------------------------------------------------------------- replies

# Hard-coded: what a requester's reply does in each status (accepted, status after, reopens).
EXPECTED_REQUESTER_REPLIES = {
    "open": (True, "open", False),
    "in_progress": (True, "in_progress", False),
    "waiting_on_customer": (True, "in_progress", False),
    "resolved": (True, "open", True),
    "closed": (False, "closed", False),
}


@pytest.mark.parametrize("status", STATUSES)
def test_reply_outcome_of_a_requester(status):
    outcome = reply_outcome(status, "requester")
    assert (outcome.accepted, outcome.status, outcome.reopens) == EXPECTED_REQUESTER_REPLIES[status]


@pytest.mark.parametrize("role", STAFF_ROLES)
@pytest.mark.parametrize("status", STATUSES)
def test_reply_outcome_of_staff_is_taken_and_moves_nothing(status, role):
    outcome = reply_outcome(status, role)
    assert (outcome.accepted, outcome.status, outcome.reopens) == (True, status, False)


@pytest.mark.parametrize("status", STATUSES)
def test_reply_outcome_reopen_is_a_move_the_requester_may_make(status):
    outcome = reply_outcome(status, "requester")
    if outcome.reopens:
        check_transition(status, outcome.status, "requester")
