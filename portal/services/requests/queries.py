"""Reading requests: who sees what, the list's filters, sorts and pages, and who changed one last."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, Select, false, func, literal, literal_column, select, tuple_, union, union_all
from sqlalchemy.orm import QueryableAttribute, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from portal import policy
from portal.domain import workflow
from portal.domain.workflow import PRIORITIES, STATUSES
from portal.extensions import db
from portal.formatting import MARK_END, MARK_START
from portal.models import AuditLog, Category, Comment, RequestTally, ServiceRequest, SlaMetric, User
from portal.models.service_request import SEARCH_CONFIG
from portal.paging import Page, as_id, clamp_page, page_args
from portal.services import categories, request_tally
from portal.services.errors import NotFound, ValidationFailed
from portal.services.text import unstorable_reason

SORTS = {
    "relevance": "Best match",   # offered, and the default, while searching
    "due": "Due soonest",        # the next running SLA target; the default for open work
    "newest": "Newest first",
    "oldest": "Oldest first",
    "updated": "Recently updated",
    "priority": "Priority",
    "status": "Status",
}
STATUS_GROUPS = {"active": workflow.OPEN_STATUSES, "done": frozenset({"resolved", "closed"})}
STATUS_ANY = "any"  # every status, said outright: staff pages read a missing status as "active" (open work)
SEARCH_MAX = 200
CURSOR_MAX = 400
COUNT_CAP = 10_000   # past this a list says "more than 10,000" instead of counting every row
RANK_MAX = 2_000     # a search matching more is shown newest first, not ranked
SEARCH_SMALL = 1_000  # a search matching at most this many (by text, by comments) is read as a list of ids
# Date-range filters, "2026-03-02..2026-03-08" (UTC days, both included), as the dashboard's charts
# link to them: created in, resolved in, or with an SLA target breached in the range.
DATE_FILTERS = {"created": "Created", "resolved": "Resolved", "breached": "SLA breached"}
DATE_RANGE_MAX_DAYS = 366


def visible_requests(actor: User) -> Select:
    """Requests the actor may see: staff see all, requesters their own."""
    stmt = select(ServiceRequest)
    if not policy.sees_all_requests(actor):
        stmt = stmt.where(ServiceRequest.requester_id == actor.id)
    return stmt


def sees_any_request(actor: User) -> bool:
    """Whether the actor has any request to see at all (a requester: one of their own).

    One index probe (EXISTS), for the list's empty state: a first visit, not filters matching nothing.
    """
    return bool(db.session.scalar(select(visible_requests(actor).with_only_columns(ServiceRequest.id).exists())))


def get_request(actor: User, request_id: int) -> ServiceRequest:
    """The request if the actor may see it; NotFound otherwise (never reveals that it exists)."""
    stmt = visible_requests(actor).where(ServiceRequest.id == request_id).options(
        joinedload(ServiceRequest.requester), joinedload(ServiceRequest.assignee)
    )
    found = db.session.scalar(stmt)
    if found is None:
        raise NotFound(f"Request #{request_id} was not found.")
    return found


def follow_ups_of(actor: User, req: ServiceRequest) -> list[int]:
    """The ids of the follow-ups the actor may see that continue `req`, oldest first (a partial index)."""
    stmt = (visible_requests(actor).with_only_columns(ServiceRequest.id)
            .where(ServiceRequest.follow_up_of_id == req.id).order_by(ServiceRequest.id))
    return list(db.session.scalars(stmt))


def _newest_audit_row(request_id: int) -> Select:
    """(who by name, when, who by id) of the request's newest audit row: one step of the audit
    trail's (entity, time) index, however long the history."""
    return (select(func.coalesce(User.name, "the system"), AuditLog.at, AuditLog.actor_id)
            .select_from(AuditLog).outerjoin(User, User.id == AuditLog.actor_id)
            .where(AuditLog.entity_type == "service_request", AuditLog.entity_id == request_id)
            .order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(1))


def last_change(request_id: int) -> tuple[str | None, datetime | None, int | None]:
    """Who changed the request last (name, id) and when, from its audit trail (indexed by entity and time)."""
    row = db.session.execute(_newest_audit_row(request_id)).first()
    return (row[0], row[1], row[2]) if row else (None, None, None)


@dataclass(frozen=True)
class LatestChange:
    """The newest change to a request that a viewer may know of: what an open page polls for."""

    stamp: str              # changes whenever a change the viewer may see is made; compared, never read
    by_name: str | None     # who made it ("the system" for the portal itself); None: no change recorded
    by_id: int | None


def latest_change(actor: User, req: ServiceRequest) -> LatestChange:
    """The newest audit row of `req` that `actor` may know of, read along the audit trail's (entity, time)
    index: one row, however long the history.

    Every change to a request writes an audit row in its unit of work (a comment too, which alone would
    not show in `version` for its viewer), so the newest row's time says whether the page is current.
    A requester never learns of an internal note (or its files) nor of SLA exemptions, so those rows
    are not theirs to be told about: the stamp moves only with what their page shows.
    """
    stmt = _newest_audit_row(req.id)
    if not policy.can(actor, "requests.internal_notes"):
        stmt = stmt.where(~AuditLog.action.startswith("sla."),
                          func.coalesce(AuditLog.after["internal"].astext, "false") != "true")
    row = db.session.execute(stmt).first()
    if row is None:
        return LatestChange("0", None, None)
    by_name, at, by_id = row
    return LatestChange(f"{at.astimezone(UTC):%Y%m%d%H%M%S%f}", by_name, by_id)


@dataclass
class RequestFilters:
    """The list's filters, as parsed from a query string or API call."""

    status: str = ""        # a status, a group ("active", "done") or "" for all
    priority: str = ""
    category: str = ""
    assignee: str = ""      # "", "me", "none" or a user id
    created: str = ""       # a date range (DATE_FILTERS), "" for any
    resolved: str = ""
    breached: str = ""
    q: str = ""
    sort: str = "newest"
    page: int = 1
    per_page: int = 25
    default_per_page: int = 25
    after: str = ""         # a page link's position (the last row of the page before)
    before: str = ""        # ... or the first row of the page after
    last: bool = False      # the last page
    unranked: bool = False  # a search matched too many to rank: shown newest first
    strict: bool = False    # an API call: a stale page link is an error, not a quiet first page
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def default_sort(self) -> str:
        """Best match while searching; the open work by when it falls due; else newest first."""
        if self.q:
            return "relevance"
        return "due" if self.status == "active" else "newest"

    def as_query(self, **overrides: Any) -> dict[str, Any]:
        """Non-default values as query parameters (for links that keep the current view)."""
        values = {
            "status": self.status, "priority": self.priority, "category": self.category,
            "assignee": self.assignee, "created": self.created, "resolved": self.resolved,
            "breached": self.breached, "q": self.q,
            "sort": "" if self.sort == self.default_sort else self.sort,
            "page": "" if self.page == 1 else self.page,
            "per_page": "" if self.per_page == self.default_per_page else self.per_page,
            "after": self.after, "before": self.before, "last": 1 if self.last else "",
        }
        values.update(overrides)
        return {k: v for k, v in values.items() if v not in ("", None)}

    def view_query(self) -> dict[str, Any]:
        """The filters and sort alone: the same view from its first page."""
        return self.as_query(page="", after="", before="", last="")

    def date_ranges(self) -> dict[str, tuple[date, date]]:
        """The date-range filters in force: name -> (first day, last day)."""
        return {name: read_date_range(getattr(self, name)) for name in DATE_FILTERS if getattr(self, name)}

    def date_labels(self) -> list[tuple[str, str, str]]:
        """(name, label, range as people read it) of each date-range filter in force, for the list's chips."""
        return [(name, DATE_FILTERS[name], describe_date_range(getattr(self, name)))
                for name in DATE_FILTERS if getattr(self, name)]


def date_range_value(first: date, last: date) -> str:
    """A date-range filter's value: "2026-03-02..2026-03-08"."""
    return f"{first.isoformat()}..{last.isoformat()}"


def describe_date_range(value: str) -> str:
    """A date-range filter as people read it: "2 Mar – 8 Mar 2026" (one day: "2 Mar 2026")."""
    first, last = read_date_range(value)
    if first == last:
        return f"{first.day} {first:%b %Y}"
    return f"{first.day} {first:%b}{'' if first.year == last.year else f' {first.year}'} – {last.day} {last:%b %Y}"


def read_date_range(value: str) -> tuple[date, date]:
    """(first, last) of a date-range filter's value; ValueError when it is not one."""
    first, sep, last = value.partition("..")
    if not sep or len(first) != 10 or len(last) != 10:
        raise ValueError(value)
    first_day, last_day = date.fromisoformat(first), date.fromisoformat(last)
    if last_day < first_day or (last_day - first_day).days >= DATE_RANGE_MAX_DAYS:
        raise ValueError(value)
    return first_day, last_day


def parse_filters(args: Any, default_per_page: int = 25, strict: bool = False) -> RequestFilters:
    """Read filters from a mapping of strings. Unknown values are dropped, or reported when strict."""
    f = RequestFilters(per_page=default_per_page, default_per_page=default_per_page)
    errors: dict[str, str] = {}

    def pick(name: str, allowed) -> str:
        value = (args.get(name) or "").strip()
        if value and value not in allowed:
            errors[name] = f"Unknown {name} '{value[:40]}'."
            return ""
        return value

    f.status = pick("status", (*STATUSES, *STATUS_GROUPS, STATUS_ANY))
    f.priority = pick("priority", PRIORITIES)
    f.category = pick("category", {c.code for c in categories.list_all()})
    assignee = (args.get("assignee") or "").strip()
    if assignee and assignee not in ("me", "none") and as_id(assignee) is None:
        errors["assignee"] = "Use 'me', 'none' or a user id."
        assignee = ""
    f.assignee = assignee
    for name in DATE_FILTERS:
        value = (args.get(name) or "").strip()
        try:
            setattr(f, name, date_range_value(*read_date_range(value)) if value else "")
        except ValueError:
            errors[name] = (f"{DATE_FILTERS[name]}: use UTC days like 2026-03-02..2026-03-08 (first day, "
                            f"last day, at most {DATE_RANGE_MAX_DAYS} days).")
    q = (args.get("q") or "").strip()[:SEARCH_MAX]
    f.q = "" if unstorable_reason(q) else q  # text no row can contain matches nothing; search all
    f.sort = pick("sort", SORTS) or f.default_sort
    if f.sort == "relevance" and search_query(f.q) is None:
        f.sort = "newest"  # nothing to rank by
    f.page, f.per_page = page_args(args, default_per_page, strict=strict, errors=errors)
    for name in ("after", "before"):
        token = (args.get(name) or "").strip()
        if token and (len(token) > CURSOR_MAX or not re.fullmatch(r"[A-Za-z0-9_-]+", token)):
            errors[name] = "That page link is damaged; showing the first page."
        else:
            setattr(f, name, token)
    f.last = (args.get("last") or "").strip() in ("1", "true")
    if strict and errors:
        raise ValidationFailed(errors, "Some filters are not valid.")
    f.errors, f.strict = errors, strict
    return f


# ---------------------------------------------------------------- search

SEARCH_WORDS_MAX = 12


def _search_words(q: str) -> list[str]:
    """The words of a search (letters, digits, underscore), at most SEARCH_WORDS_MAX."""
    return re.findall(r"\w+", q)[:SEARCH_WORDS_MAX]


def search_query(q: str) -> Any | None:
    """The tsquery of a search: every word must match, each as a prefix (`print` finds "printer")."""
    words = _search_words(q)
    if not words:
        return None
    return func.to_tsquery(literal_column(f"'{SEARCH_CONFIG}'::regconfig"), " & ".join(f"{w}:*" for w in words))


def _id_lookup(q: str) -> tuple[int | None, bool]:
    """(the request number in a search, whether it is only a number: "#123" looks up that request alone)."""
    match = re.fullmatch(r"(#?)\s*(\d+)", q)
    if not match:
        return None, False
    return as_id(match.group(2)), bool(match.group(1))


def search_condition(actor: User, q: str) -> Any:
    """Requests whose title, description or a comment the actor may read matches `q`, or whose number it is."""
    number, only_number = _id_lookup(q)
    if only_number:
        return ServiceRequest.id == number if number is not None else false()
    matching = []
    tsquery = search_query(q)
    if tsquery is not None:
        # One id list from each GIN index, then a join by primary key: an OR across the two tables
        # would make PostgreSQL read every request.
        matching.append(select(ServiceRequest.id).where(ServiceRequest.search_vector.op("@@")(tsquery)))
        comments = select(Comment.request_id).where(Comment.search_vector.op("@@")(tsquery))
        if not policy.can(actor, "requests.internal_notes"):
            comments = comments.where(Comment.internal.is_(False))
        matching.append(comments)
    if number is not None:
        matching.append(select(literal(number)))
    if not matching:
        return false()
    return ServiceRequest.id.in_(union(*matching))


def highlights(items: list[ServiceRequest], q: str) -> dict[int, tuple[str, str]]:
    """Per request on the page: its title with the matched words marked, and a marked snippet of
    its description when the words are in it (else "")."""
    tsquery = search_query(q)
    if tsquery is None or not items or _id_lookup(q)[1]:
        return {}
    marks = f"StartSel={MARK_START}, StopSel={MARK_END}"
    rows = db.session.execute(select(
        ServiceRequest.id,
        func.ts_headline(literal_column(f"'{SEARCH_CONFIG}'::regconfig"), ServiceRequest.title, tsquery,
                         f"HighlightAll=true, {marks}"),
        func.ts_headline(literal_column(f"'{SEARCH_CONFIG}'::regconfig"), ServiceRequest.description, tsquery,
                         f"MaxWords=24, MinWords=8, MaxFragments=2, FragmentDelimiter=\" … \", {marks}"),
    ).where(ServiceRequest.id.in_([r.id for r in items])))
    return {rid: (title, snippet if MARK_START in snippet else "") for rid, title, snippet in rows}


# ---------------------------------------------------------------- filters, sorts and seek paging

def filtered_requests(actor: User, f: RequestFilters, search: bool = True) -> Select:
    """The actor's visible requests matching the filters (unordered): the list's and the exports' one query.

    `search=False` leaves out the text search (the list applies it its own way, see _streams).
    """
    stmt = visible_requests(actor).where(*filter_conditions(ServiceRequest, actor, f), *date_conditions(f))
    if f.q and search:
        stmt = stmt.where(search_condition(actor, f.q))
    return stmt


def filter_conditions(table: Any, actor: User, f: RequestFilters) -> list:
    """The status, priority, category and assignee filters as conditions on `table`'s columns of
    those names: ServiceRequest, or RequestTally for the list's total (services/request_tally.py)."""
    conditions = []
    if f.status == STATUS_ANY:
        pass
    elif f.status in STATUS_GROUPS:
        conditions.append(table.status.in_(sorted(STATUS_GROUPS[f.status], key=STATUSES.index)))
    elif f.status:
        conditions.append(table.status == f.status)
    if f.priority:
        conditions.append(table.priority == f.priority)
    if f.category:
        conditions.append(table.category == f.category)
    if f.assignee == "me":
        conditions.append(table.assignee_id == actor.id)
    elif f.assignee == "none":
        conditions.append(table.assignee_id.is_(None))
    elif f.assignee:
        conditions.append(table.assignee_id == as_id(f.assignee))
    return conditions


def date_conditions(f: RequestFilters) -> list:
    """The date-range filters as conditions on ServiceRequest (the tally has no dates), each an index
    range scan: created_at (ix_service_request_created_id), resolved_at and the two breach times
    (their partial indexes, migration 0005), one id list per breach time rather than an OR."""
    conditions = []
    for name, (first, last) in f.date_ranges().items():
        start = datetime.combine(first, time.min, UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, UTC)
        if name == "created":
            conditions += [ServiceRequest.created_at >= start, ServiceRequest.created_at < end]
        elif name == "resolved":
            conditions += [ServiceRequest.resolved_at >= start, ServiceRequest.resolved_at < end]
        else:
            m = SlaMetric
            conditions.append(ServiceRequest.id.in_(union(
                select(m.request_id).where(m.response_breached_at >= start, m.response_breached_at < end),
                select(m.request_id).where(m.resolution_breached_at >= start, m.resolution_breached_at < end))))
    return conditions


def sort_keys(sort: str, q: str = "") -> list[tuple[Any, bool]]:
    """The list order of a sort as (column, descending) pairs, ending in the id so the order is total.

    Each has an index in this order (migration 0012), so a page is a short index range scan.
    """
    sr = ServiceRequest
    if sort == "relevance":
        tsquery = search_query(q)
        if tsquery is not None:
            return [(func.ts_rank(sr.search_vector, tsquery, type_=Float), True), (sr.id, True)]
        sort = "newest"
    return {
        "due": [(sr.due_sort, False), (sr.id, False)],
        "newest": [(sr.created_at, True), (sr.id, True)],
        "oldest": [(sr.created_at, False), (sr.id, False)],
        "updated": [(sr.updated_at, True), (sr.id, True)],
        "priority": [(sr.priority_rank, False), (sr.created_at, False), (sr.id, False)],
        "status": [(sr.status_rank, False), (sr.created_at, True), (sr.id, True)],
    }[sort]


def sort_order(sort: str, q: str = "") -> list:
    """The ORDER BY of a list sort (one of SORTS)."""
    return [column.desc() if descending else column.asc() for column, descending in sort_keys(sort, q)]


def _cursor(sort: str, row_values: list[Any]) -> str:
    """A page link's position: the sort and the sort values of a row, as an opaque URL-safe token."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in row_values]
    raw = json.dumps([sort, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(token: str, sort: str, keys: list[tuple[Any, bool]]) -> list[Any] | None:
    """The row values in a token made by _cursor for this sort; None when it is damaged or for another sort."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(decoded, list) or len(decoded) != len(keys) + 1 or decoded[0] != sort:
        return None
    values = []
    for (column, _desc), value in zip(keys, decoded[1:], strict=True):
        python_type = getattr(getattr(column, "type", None), "python_type", float)
        try:
            if python_type is datetime and isinstance(value, str):
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    return None
            elif python_type is int and isinstance(value, int) and not isinstance(value, bool):
                value = int(value)
            elif python_type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = float(value)
            else:
                return None
        except (ValueError, NotImplementedError):
            return None
        values.append(value)
    return values


def _beyond(stmt: Select, keys: list[tuple[Any, bool]], values: list[Any], forward: bool, limit: int) -> Select:
    """The rows after (forward) or before a position in the order `keys`, nearest first: keyset paging.

    Runs of keys in the same direction compare as one row value; an order that changes direction
    (status rank up, then newest first) becomes one index range per run, combined with UNION ALL.
    """
    runs: list[tuple[list, list, bool]] = []
    for (column, desc), value in zip(keys, values, strict=True):
        if runs and runs[-1][2] == desc:
            runs[-1][0].append(column)
            runs[-1][1].append(value)
        else:
            runs.append(([column], [value], desc))
    order = [c.desc() if d == forward else c.asc() for c, d in keys]
    branches = []
    for i, (columns, run_values, desc) in enumerate(runs):
        before = [col == val for cols, vals, _d in runs[:i] for col, val in zip(cols, vals, strict=True)]
        left = tuple_(*columns) if len(columns) > 1 else columns[0]
        right = tuple_(*[literal(v) for v in run_values]) if len(columns) > 1 else run_values[0]
        past = left < right if desc == forward else left > right
        branches.append(stmt.where(*before, past).order_by(*order).limit(limit))
    if len(branches) == 1:
        return branches[0]
    ids = union_all(*(b.with_only_columns(ServiceRequest.id) for b in branches)).subquery()
    return select(ServiceRequest).where(ServiceRequest.id.in_(select(ids.c.id))).order_by(*order).limit(limit)


def capped_count(stmt: Select, cap: int | None = None) -> tuple[int, bool]:
    """How many rows `stmt` matches, counting at most `cap` (default COUNT_CAP) + 1: (count, exact).

    Only where the request tally cannot answer: a requester's own requests, a search.
    """
    cap = COUNT_CAP if cap is None else cap
    counted = db.session.scalar(select(func.count()).select_from(
        stmt.with_only_columns(ServiceRequest.id).order_by(None).limit(cap + 1).subquery())) or 0
    return (counted, True) if counted <= cap else (cap, False)


def _seek_rank(stmt: Select, f: RequestFilters) -> Select:
    """A priority or status filter said again as its rank when the list is sorted by that rank.

    PostgreSQL cannot tell that priority = 'low' means priority_rank = 3: without it, the sort's
    index (priority_rank, created_at, id) is walked from the first rank, past every row of the
    ranks before, until enough low ones turn up. With it the walk starts at the right rank, and a
    cursor's "later ranks" branch that the filter rules out ends at once.
    """
    if f.sort == "priority" and f.priority:
        stmt = stmt.where(ServiceRequest.priority_rank == workflow.PRIORITY_RANK[f.priority])
    elif f.sort == "status" and f.status in STATUSES:
        stmt = stmt.where(ServiceRequest.status_rank == STATUSES.index(f.status))
    elif f.sort == "status" and f.status in STATUS_GROUPS:
        # "done" sorted by status: start at the resolved rank, not past 100,000s of open rows.
        stmt = stmt.where(ServiceRequest.status_rank.in_(sorted(STATUSES.index(s) for s in STATUS_GROUPS[f.status])))
    return stmt


def _streams(actor: User, f: RequestFilters) -> list[Select]:
    """The list's query as one statement or, for a search matching many, several whose rows together
    are the list (title/description matches, comment matches, the number): each is read in the
    list's order from its own index and the pages are merged, so no plan joins every match.

    A search matching at most SEARCH_SMALL requests by each route becomes a list of their ids.
    """
    stmt = _seek_rank(filtered_requests(actor, f, search=False), f)
    if not f.q:
        return [stmt]
    number, only_number = _id_lookup(f.q)
    tsquery = None if only_number else search_query(f.q)
    if tsquery is None:
        return [stmt.where(ServiceRequest.id == number if number is not None else false())]
    comments = select(Comment.request_id).where(Comment.search_vector.op("@@")(tsquery))
    if not policy.can(actor, "requests.internal_notes"):
        comments = comments.where(Comment.internal.is_(False))
    own = select(ServiceRequest.id).where(ServiceRequest.search_vector.op("@@")(tsquery))
    explicit: set[int] = {number} if number is not None else set()
    streams = []
    for matching, predicate in ((own, ServiceRequest.search_vector.op("@@")(tsquery)),
                                (comments, ServiceRequest.id.in_(comments))):
        # A probe that stops after SEARCH_SMALL + 1 matches. The CTE is planned for all its rows,
        # so PostgreSQL reads the GIN index rather than hoping a sequential scan meets enough
        # matches early (the plan a bare LIMIT invites when the word's frequency is unknown).
        found = matching.cte("matching").prefix_with("MATERIALIZED")
        ids = list(db.session.scalars(select(found.c[0]).limit(SEARCH_SMALL + 1)))
        if len(ids) <= SEARCH_SMALL:
            explicit.update(ids)
        else:
            streams.append(stmt.where(predicate))
    if explicit or not streams:
        streams.append(stmt.where(ServiceRequest.id.in_(sorted(explicit)) if explicit else false()))
    return streams


def _count(streams: list[Select]) -> tuple[int, bool]:
    """capped_count over the streams together (their rows may overlap). A search matching many
    (several streams) counts to SEARCH_SMALL only: "more than 1,000" is all a person needs there."""
    if len(streams) == 1:
        return capped_count(streams[0])
    ids: set[int] = set()
    for stream in streams:
        found = list(db.session.scalars(stream.with_only_columns(ServiceRequest.id).order_by(None)
                                        .limit(SEARCH_SMALL + 1)))
        if len(found) > SEARCH_SMALL:
            return SEARCH_SMALL, False
        ids.update(found)
    return (len(ids), True) if len(ids) <= SEARCH_SMALL else (SEARCH_SMALL, False)


def _with_people(rows: list[ServiceRequest]) -> list[ServiceRequest]:
    """Load the rows' requesters and assignees in one statement (two selectin loads were two)."""
    wanted = {r.requester_id for r in rows} | {r.assignee_id for r in rows if r.assignee_id is not None}
    people = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}
    for r in rows:
        set_committed_value(r, "requester", people.get(r.requester_id))
        set_committed_value(r, "assignee", people.get(r.assignee_id) if r.assignee_id is not None else None)
    return rows


def _fetch(streams: list[Select], build, keys: list[tuple[Any, bool]], reverse: bool, limit: int,
           q: str) -> list[ServiceRequest]:
    """`build(stream)` (ordered, limited) of every stream, merged in list order (reversed when
    reading backwards), without repeats, at most `limit` rows."""
    rows = {r.id: r for stream in streams for r in db.session.scalars(build(stream))}
    merged = list(rows.values())
    if len(streams) > 1:
        for column, desc in reversed(keys):  # stable sorts, last key first
            merged.sort(key=lambda r, c=column: _key_value(r, c, q), reverse=desc != reverse)
    return _with_people(merged[:limit])


def list_requests(actor: User, f: RequestFilters) -> Page:
    """The actor's visible requests matching the filters, one page of them.

    Pages go by position ("seek"): the next page starts after the last row shown, so every page
    costs the same however deep. `page` numbers (old links, API clients) still work by OFFSET.
    """
    streams = _streams(actor, f)
    if not f.q and not f.date_ranges() and policy.sees_all_requests(actor):
        # Staff without a search: the sum of the tally the database keeps, exact at any size.
        total, exact = request_tally.total(filter_conditions(RequestTally, actor, f)), True
    else:  # a requester's own requests (an index of their own), a search or a date range
        total, exact = _count(streams)
    if f.sort == "relevance" and (len(streams) > 1 or total > RANK_MAX):
        f.sort, f.unranked = "newest", True  # ranking every match of a very common word costs too much
    keys = sort_keys(f.sort, f.q)
    order = sort_order(f.sort, f.q)
    n = f.per_page
    token = f.after or f.before
    position = _read_cursor(token, f.sort, keys) if token else None
    if token and position is None:
        if f.strict:
            raise ValidationFailed({"after" if f.after else "before": "This cursor is not one of this list's "
                                    "(another sort, or damaged): start again without it."})
        f.errors["after" if f.after else "before"] = "That page link is out of date; showing the first page."
        f.after = f.before = ""
    if position is not None:
        forward = bool(f.after)
        rows = _fetch(streams, lambda s: _beyond(s, keys, position, forward, n + 1), keys, not forward, n + 1, f.q)
        more = len(rows) > n
        rows = rows[:n]
        if not forward:
            rows.reverse()
        if rows:
            return _page(rows, keys, f, total, exact, *((False, not more) if forward else (not more, False)))
        # everything past the position went away: start over
    elif f.last:
        backwards = [c.asc() if d else c.desc() for c, d in keys]
        rows = _fetch(streams, lambda s: s.order_by(*backwards).limit(n + 1), keys, True, n + 1, f.q)
        return _page(rows[:n][::-1], keys, f, total, exact, len(rows) <= n, True)
    elif f.page > 1:
        if not exact and (f.page - 1) * n >= total:  # past the capped count: is there such a page at all?
            total, exact = _count_all(streams), True
        f.page = clamp_page(f.page, total, n)
        if len(streams) == 1:
            rows = _with_people(list(db.session.scalars(streams[0].order_by(*order)
                                                        .limit(n + 1).offset((f.page - 1) * n))))
        else:  # the streams' first pages merged (only a search matching many comes here)
            depth = f.page * n + 1
            rows = _fetch(streams, lambda s: s.order_by(*order).limit(depth), keys, False, depth, f.q)
            rows = rows[(f.page - 1) * n:]
        page = _page(rows[:n], keys, f, total, exact, False, len(rows) <= n)
        page.page = f.page
        return page
    rows = _fetch(streams, lambda s: s.order_by(*order).limit(n + 1), keys, False, n + 1, f.q)
    return _page(rows[:n], keys, f, total, exact, True, len(rows) <= n)


def next_in_list(actor: User, f: RequestFilters, req: ServiceRequest, at: str = "") -> tuple[int, str] | None:
    """(id, place) of the request after `req` in the list `f` describes (its filters and sort, from
    any page), or None at its end: the request page's "Next request".

    `at` is `req`'s place when the list showed it (Page.positions): working a request moves it in
    its own list (resolved, it leaves the open work; its due time goes), and the next one is still
    the one after where it was. Without it, the request's place now."""
    if f.sort == "relevance":
        f.sort = "newest"  # a rank is the search's, not the request's: walk on newest first
    keys = sort_keys(f.sort, f.q)
    position = _read_cursor(at, f.sort, keys) if at else None
    if position is None:
        position = [_key_value(req, column, f.q) for column, _desc in keys]
    rows = _fetch(_streams(actor, f), lambda s: _beyond(s, keys, position, True, 1), keys, False, 1, f.q)
    if not rows:
        return None
    return rows[0].id, _cursor(f.sort, [_key_value(rows[0], column, f.q) for column, _desc in keys])


def _count_all(streams: list[Select]) -> int:
    """The exact count (numbered pages past the cap need it: slow on a large list, like OFFSET)."""
    union_ids = union(*(s.with_only_columns(ServiceRequest.id).order_by(None) for s in streams)).subquery()
    return db.session.scalar(select(func.count()).select_from(union_ids)) or 0


def _page(rows: list[ServiceRequest], keys, f: RequestFilters, total: int, exact: bool,
          at_start: bool, at_end: bool) -> Page:
    """A Page with the positions of its first and last rows for the Previous and Next links."""
    def position(row: ServiceRequest) -> str:
        return _cursor(f.sort, [_key_value(row, column, f.q) for column, _desc in keys])

    page = Page(rows, total, 1, f.per_page, total_exact=exact,
                prev_cursor="" if at_start or not rows else position(rows[0]),
                next_cursor="" if at_end or not rows else position(rows[-1]))
    if f.q:
        page.highlights = highlights(rows, f.q)
    if f.sort != "relevance":  # a rank is asked of PostgreSQL: not worth a query per row
        page.positions = {row.id: position(row) for row in rows}
    return page


def _key_value(row: ServiceRequest, column: Any, q: str) -> Any:
    """A row's value of one sort key (the search rank is asked of PostgreSQL)."""
    if isinstance(column, QueryableAttribute):
        return getattr(row, column.key)
    return db.session.scalar(select(column).where(ServiceRequest.id == row.id))


def list_categories(include_inactive: bool = False) -> list[Category]:
    """Categories in display order."""
    return [c for c in categories.list_all() if include_inactive or c.active]
