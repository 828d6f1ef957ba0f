"""What an exemption granted over a recorded breach did (sla_rules.breach_exemption): the breach
stands, staff read a note. Pure functions, no fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.sla_rules import BreachExemption, ExemptionSpan, breach_exemption, exempt_breach

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
BREACHED = NOW - 20 * H          # 3 Dec 14:00


def test_breach_exemption_active_reads_exempt_until():
    note = breach_exemption({"resolution": BREACHED}, [ExemptionSpan("resolution", NOW - H, NOW + 28 * H)], NOW)

    assert note == BreachExemption(("resolution",), True, True, NOW - H, NOW + 28 * H)
    assert note.label == "exempt until 5 Dec 14:00 UTC"


def test_breach_exemption_indefinite_reads_no_end():
    note = breach_exemption({"response": BREACHED}, [ExemptionSpan("both", NOW - H, None)], NOW)

    assert note is not None and note.active and note.until is None
    assert note.label == "exempt, no end"


def test_breach_exemption_ended_reads_was_exempt_days():
    spans = [ExemptionSpan("response", datetime(2026, 12, 3, 15, tzinfo=UTC), datetime(2026, 12, 4, 9, tzinfo=UTC))]
    note = breach_exemption({"response": BREACHED}, spans, NOW)

    assert note is not None and not note.active
    assert note.label == "was exempt 3\u20134 Dec"


@pytest.mark.parametrize(("start", "end", "text"), [
    (datetime(2026, 12, 3, 9, tzinfo=UTC), datetime(2026, 12, 3, 12, tzinfo=UTC), "was exempt 3 Dec"),
    (datetime(2026, 11, 28, 9, tzinfo=UTC), datetime(2026, 12, 2, 9, tzinfo=UTC), "was exempt 28 Nov\u20132 Dec"),
])
def test_breach_exemption_ended_day_spans(start, end, text):
    note = breach_exemption({"response": start - H}, [ExemptionSpan("response", start, end)], NOW)

    assert note is not None and note.label == text


def test_breach_exemption_ignores_other_target_unbreached_and_ended_before_the_breach():
    other = ExemptionSpan("response", NOW - H, None)
    before = ExemptionSpan("resolution", BREACHED - 5 * H, BREACHED - H)

    assert breach_exemption({"resolution": BREACHED}, [other, before], NOW) is None
    assert breach_exemption({"resolution": None}, [ExemptionSpan("both", NOW - H, None)], NOW) is None
    assert breach_exemption({}, [], NOW) is None


def test_breach_exemption_active_wins_over_ended():
    spans = [ExemptionSpan("both", NOW - 10 * H, NOW - 5 * H), ExemptionSpan("resolution", NOW - H, NOW + 2 * H)]

    note = breach_exemption({"resolution": BREACHED}, spans, NOW)

    assert note is not None and note.active and note.until == NOW + 2 * H


def test_breach_exemption_target_covered_twice_is_exempt_until_the_last_end():
    spans = [ExemptionSpan("resolution", NOW - H, NOW + 2 * H), ExemptionSpan("both", NOW - 2 * H, NOW + 9 * H)]

    assert breach_exemption({"resolution": BREACHED}, spans, NOW).until == NOW + 9 * H
    spans.append(ExemptionSpan("resolution", NOW - H, None))
    assert breach_exemption({"resolution": BREACHED}, spans, NOW).until is None


def test_breach_exemption_both_breached_one_covered_names_the_target_and_is_not_whole():
    breached = {"response": BREACHED, "resolution": BREACHED + H}
    spans = [ExemptionSpan("resolution", NOW - H, None)]

    note = breach_exemption(breached, spans, NOW)

    assert note.targets == ("resolution",) and not note.whole
    assert note.label == "resolution exempt, no end"
    assert not exempt_breach(breached, spans, NOW)
    assert exempt_breach(breached, [*spans, ExemptionSpan("response", NOW - H, NOW + H)], NOW)


def test_breach_exemption_both_covered_until_the_first_end():
    breached = {"response": BREACHED, "resolution": BREACHED + H}
    spans = [ExemptionSpan("response", NOW - H, NOW + 3 * H), ExemptionSpan("resolution", NOW - H, None)]

    note = breach_exemption(breached, spans, NOW)

    assert note.whole and note.until == NOW + 3 * H and note.label == "exempt until 4 Dec 13:00 UTC"


def test_breach_exemption_granted_later_than_now_does_not_count():
    assert breach_exemption({"response": BREACHED}, [ExemptionSpan("response", NOW + H, None)], NOW) is None


_moments = st.integers(-48, 48).map(lambda h: NOW + h * H)
_spans = st.lists(st.builds(ExemptionSpan, st.sampled_from(("response", "resolution", "both")), _moments,
                            st.one_of(st.none(), _moments)), max_size=4)


@given(_spans, st.one_of(st.none(), _moments), st.one_of(st.none(), _moments))
def test_exempt_breach_means_every_breached_target_is_covered_by_an_active_exemption(spans, response, resolution):
    breached = {"response": response, "resolution": resolution}

    def active_cover(target: str) -> bool:
        return any(s.covers in (target, "both") and s.start <= NOW and (s.end is None or s.end > NOW) for s in spans)

    expected = (response is not None or resolution is not None) and all(
        active_cover(t) for t, at in breached.items() if at is not None)
    assert exempt_breach(breached, spans, NOW) == expected
    note = breach_exemption(breached, spans, NOW)
    if note is not None:
        assert note.label  # every note reads as text
        assert set(note.targets) <= {t for t, at in breached.items() if at is not None}
