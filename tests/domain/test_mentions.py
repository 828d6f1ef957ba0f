"""@mentions: which colleagues a note names (pure rules, no database)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portal.domain.mentions import Person, find_mentions, mentioned_ids

ANA = Person(1, "Ana Lopez", "ana.lopez@example.com")
ANA_B = Person(2, "Ana", "abrown@example.com")
SAM = Person(3, "Sam Rivera", "sam@example.com")
TWIN_1 = Person(4, "Kim Park", "kim.park@example.com")
TWIN_2 = Person(5, "Kim Park", "kpark2@example.com")
STAFF = [ANA, ANA_B, SAM, TWIN_1, TWIN_2]


def test_mentions_full_names_with_spaces_in_any_case():
    assert mentioned_ids("Could @ana lopez and @SAM RIVERA look?", STAFF) == [1, 3]


def test_mentions_the_longest_name_that_fits():
    assert mentioned_ids("@Ana Lopez please", STAFF) == [1]
    assert mentioned_ids("@Ana please", STAFF) == [2]


def test_mentions_by_the_email_handle():
    assert mentioned_ids("ping @ana.lopez, and @abrown.", STAFF) == [1, 2]


def test_unknown_words_and_email_addresses_are_plain_text():
    assert mentioned_ids("mail sam@example.com or @nobody", STAFF) == []
    assert mentioned_ids("@Samantha is not Sam", STAFF) == []
    assert mentioned_ids("no at sign at all", STAFF) == []


def test_a_name_two_colleagues_share_names_nobody_but_their_handles_do():
    assert mentioned_ids("@Kim Park", STAFF) == []
    assert mentioned_ids("@kpark2 and @kim.park", STAFF) == [5, 4]


def test_each_person_once_in_order_and_never_the_author():
    assert mentioned_ids("@Sam, @Ana Lopez, @sam again", STAFF) == [3, 1]
    assert mentioned_ids("@Sam Rivera notes for myself", STAFF, author_id=3) == []


def test_spans_cover_the_at_sign_and_the_name():
    text = "Hi @ana lopez!"
    [m] = find_mentions(text, STAFF)
    assert text[m.start:m.end] == "@ana lopez" and m.person_id == 1


def test_mentions_after_punctuation_and_at_line_starts():
    assert mentioned_ids("(@Sam Rivera)\n@ana.lopez: done", STAFF) == [3, 1]


@given(st.text())
def test_any_text_finds_only_known_people_inside_the_text(text):
    for m in find_mentions(text, STAFF):
        assert 0 <= m.start < m.end <= len(text)
        assert text[m.start] == "@"
        assert m.person_id in {p.id for p in STAFF}
