"""@mentions in an internal note: which colleagues a note names, and where.

A mention is `@` followed by a colleague's full name ("@Ana Lopez") or the part of their email
address before the @ ("@ana.lopez"), in any letter case, not glued to a word before it (so an email
address in the text is not a mention) nor to a letter or digit after it. Names may contain spaces,
so the longest handle that fits wins: "@Ana Lopez" is Ana Lopez even when a colleague is called
"Ana". A handle two colleagues share names nobody (their email handles still tell them apart);
an @word that names nobody is plain text.

Pure: the service passes the active staff as `Person` values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# An @ that starts a mention: not after a letter, digit or one of the characters of an address.
_AT = re.compile(r"(?<![\w.+\-@])@")


@dataclass(frozen=True)
class Person:
    """Someone who may be mentioned."""

    id: int
    name: str
    email: str


@dataclass(frozen=True)
class Mention:
    """`text[start:end]` (the @ included) names `person_id`."""

    start: int
    end: int
    person_id: int


def _handles(people: Iterable[Person]) -> dict[str, int]:
    """Each lower-cased handle -> the one person it names (handles two people share are dropped)."""
    owners: dict[str, set[int]] = {}
    for person in people:
        name = " ".join(person.name.split())
        local = person.email.split("@", 1)[0]
        for handle in {name.lower(), local.lower()}:
            if handle:
                owners.setdefault(handle, set()).add(person.id)
    return {handle: next(iter(ids)) for handle, ids in owners.items() if len(ids) == 1}


def find_mentions(text: str, people: Iterable[Person]) -> list[Mention]:
    """Every mention in `text`, in order (a person named twice is found twice)."""
    if "@" not in text:
        return []
    handles = _handles(people)
    if not handles:
        return []
    by_length = sorted({len(h) for h in handles}, reverse=True)
    found: list[Mention] = []
    for at in _AT.finditer(text):
        start = at.end()
        if found and at.start() < found[-1].end:
            continue  # inside the mention just found ("@Ana @Lopez" is not two)
        for length in by_length:
            end = start + length
            candidate = text[start:end].lower()
            if len(candidate) == length and candidate in handles and not _continues(text, end):
                found.append(Mention(at.start(), end, handles[candidate]))
                break
    return found


def _continues(text: str, end: int) -> bool:
    """Whether the word goes on after `end` ("@anathema" does not mention "ana")."""
    return end < len(text) and (text[end].isalnum() or text[end] == "_")


def mentioned_ids(text: str, people: Iterable[Person], author_id: int | None = None) -> list[int]:
    """The people `text` mentions, each once, in order of first mention, never its author."""
    seen: dict[int, None] = {}
    for mention in find_mentions(text, people):
        if mention.person_id != author_id:
            seen.setdefault(mention.person_id)
    return list(seen)
