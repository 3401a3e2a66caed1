"""Households (家庭共享): members pool a share of their points, as pure state transitions.

A household is its own state (:class:`HouseholdState`) with a pool of points lots. Each
function takes the household and one member and returns both next states together
(:class:`HouseholdChange`); the host stores both or neither. The pool keeps the same ledger
identity as a member: earned − redeemed − expired − reversed = points + pending_points.
Pooled points that were pending for the member stay pending in the pool (and with whoever
takes them out) until they would have become usable for the member. The household remembers
the version of the member state it last returned for each member and refuses an older one
(:class:`StaleMemberState`): stored again, it would drop what that call changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from ._decision import Decision, LifecycleEvent, new
from ._errors import EvaluationError, InputError, StaleMemberState
from ._lifecycle import (
    _Book,
    _instant,
    _late_updates,
    _program_parts,
    advance_state,
    counts_held,
    expires_at,
    in_unit_state,
)
from ._member import (
    ID_LENGTH,
    HouseholdState,
    MemberState,
    PointsLot,
    PointsTotals,
    coerce,
    in_unit,
    record_in_unit,
    text_of,
)
from ._money import SPEND_LIMIT, exact, plain

__all__ = [
    "HouseholdChange",
    "household_contribute",
    "household_join",
    "household_leave",
    "household_withdraw",
    "with_household",
]


@dataclass(frozen=True)
class HouseholdChange:
    """The household's and the member's next states, to be stored together; ``events``: what
    bringing the member to the call's moment did first (points released or expired, as
    :func:`loyaltyrules.advance` reports), and points of a late call expired at once."""

    household: HouseholdState
    member: MemberState
    points: int
    detail: str
    events: tuple[LifecycleEvent, ...] = ()


def _held(h: HouseholdState, m: MemberState, what: str) -> None:
    """Both next states readable back (see _lifecycle.counts_held)."""
    counts_held(h, what, "household")
    counts_held(m, what)


def _rules(program: Any) -> Any:
    model, _ = _program_parts(program)  # (a TypeError for a call made wrong, as elsewhere)
    rules = model.households
    if rules is None:
        raise InputError("this program has no households (家庭共享) section", kind="household")
    return rules


# former members whose last returned state a household remembers (so a state from before
# leaving cannot rejoin); current members are always remembered
_FORMER_REMEMBERED = 500


def _check_current(h: HouseholdState, m: MemberState) -> None:
    """Refuse a member state older than the one this household last returned for the member:
    the host would store what the call returns for it, dropping what the later call changed
    (a retried withdrawal, say, gets "already withdrawn" and would hand back the old state)."""
    latest = h.member_versions.get(m.id)
    if latest is not None and m.version < latest:
        raise StaleMemberState(m.id, h.id, m.version, latest)


def _versions(h: HouseholdState, returned: MemberState, members: tuple[str, ...]
              ) -> dict[str, int]:
    """``member_versions`` once ``returned`` is handed back: its entry last, and former
    members beyond the last ``_FORMER_REMEMBERED`` forgotten."""
    versions = {k: v for k, v in h.member_versions.items() if k != returned.id}
    versions[returned.id] = returned.version
    former = [k for k in versions if k not in members]
    for k in former[:max(0, len(former) - _FORMER_REMEMBERED)]:
        del versions[k]
    return versions


def _owner(h: HouseholdState) -> str | None:
    """Who owns the household: its ``owner`` while they are a member. A household stored
    before ownership passed on can name an owner who left as its last member; the first
    member now is the one who joined next, and owns it. None when no one is left."""
    if h.owner in h.members:
        return h.owner
    return h.members[0] if h.members else None


def _pool_book(household: HouseholdState, now: datetime) -> _Book:
    """The pool as a book: a member state whose lots are the pool's."""
    # built, not validated: the household is valid already, and "household:" + a valid
    # household id can be longer than a member id may be
    shell = new(MemberState, id=f"household:{household.id}", lots=household.lots,
                totals=household.totals, points=household.points,
                pending_points=household.pending_points)
    return _Book(shell, now)


def _pool_state(household: HouseholdState, book: _Book, **updates: Any) -> HouseholdState:
    totals = new(PointsTotals, earned=book.earned, redeemed=book.redeemed,
                 expired=book.expired, reversed=book.reversed, shortfall=book.shortfall)
    return household.model_copy(update={
        "lots": tuple(book.lots), "totals": totals, "points": book.available(),
        "pending_points": book.pending(), "version": household.version + 1,
        "owner": _owner(household), **updates})


def _household_of(program: Any, household: HouseholdState | dict[str, Any]) -> HouseholdState:
    """The household's state, its spend in the currency's unit (0.001 in a yuan program is
    a state written by other code: refused before a contribution adds to it)."""
    h = coerce(HouseholdState, household, "household")
    spend, q = h.spend, program.quantum
    if not spend.same_quantum(q):  # (written in the unit, as a member's: see spend_in_unit)
        h = h.model_copy(update={"spend": in_unit(spend, q, program.currency, ("spend",),
                                                  "household")})
    return h


@exact
def household_join(program: Any, household: HouseholdState | dict[str, Any] | None,
                   member: MemberState | dict[str, Any], *, household_id: str | None = None
                   ) -> HouseholdChange:
    """Add a member to a household (creating it when None). The member owns it when it has
    no owner: a new household, or one whose last member left."""
    rules = _rules(program)
    m = coerce(MemberState, member, "member")
    m = in_unit_state(m, program.quantum, program.currency)
    if household is None:
        if not household_id or not isinstance(household_id, str):
            raise InputError(f"a new household needs an id (a string), got {household_id!r}",
                             field="household_id", kind="household")
        h = coerce(HouseholdState, {"id": household_id, "owner": None, "members": (),
                                    "spend": program.quantum * 0}, "household")  # (0.00)
    else:
        h = _household_of(program, household)
    if m.household is not None and m.household != h.id:
        raise InputError(f"member is already in household {m.household!r}", field="household",
                         kind="household")
    _check_current(h, m)
    if m.id in h.members:
        return HouseholdChange(h, m, 0, "already a member")
    if len(h.members) >= rules.max_members:
        raise InputError(f"households have at most {rules.max_members} members",
                         field="members", kind="household")
    m = m.model_copy(update={"household": h.id, "household_spend": h.spend,
                             "version": m.version + 1})
    members = (*h.members, m.id)
    owner = _owner(h)
    h = h.model_copy(update={"members": members, "owner": m.id if owner is None else owner,
                             "version": h.version + 1,
                             "member_versions": _versions(h, m, members)})
    _held(h, m, "join")
    return HouseholdChange(h, m, 0, f"{m.id} joined {h.id}")


def _members_pair(program: Any, household: HouseholdState | dict[str, Any],
                  member: MemberState | dict[str, Any], at: datetime | str
                  ) -> tuple[HouseholdState, MemberState, datetime]:
    """The household, the member and the event's instant, checked in this order: both
    valid (their spend in the currency's unit), the instant valid, the member one of the
    household's, the member's state not older than the one the household last returned."""
    h = _household_of(program, household)
    m = coerce(MemberState, member, "member")
    m = in_unit_state(m, program.quantum, program.currency)
    when = _instant(at, "at", "household")
    if m.id not in h.members:
        raise InputError(f"{m.id} is not in household {h.id}", field="member", kind="household")
    _check_current(h, m)
    return h, m, when


@exact
def household_contribute(program: Any, household: HouseholdState | dict[str, Any],
                         member: MemberState | dict[str, Any], decision: Decision
                         ) -> HouseholdChange:
    """After a member's purchase is applied: move the declared share of the points it earned
    from the member's lots into the pool, and add its qualifying spend to the group's.
    Contributing the same purchase twice changes nothing. Points still pending for the member
    (``ledger.pending_days``) are pending in the pool until the same instant."""
    rules = _rules(program)
    if not isinstance(decision, Decision):
        # as apply(): the Decision itself, not its JSON or a dict of it
        raise InputError(f"expected the purchase's Decision, got {type(decision).__name__}",
                         field="decision", kind="household")
    h, m, at = _members_pair(program, household, member, decision.at)
    if decision.member_id != m.id:  # (first: another member's purchase is no retry of this)
        raise InputError(f"the decision is member {decision.member_id}'s purchase, not "
                         f"{m.id}'s", field="decision", kind="household")
    # remembered per member, as purchase ids are (two members may both have a purchase T1);
    # households stored before this remember contributions by purchase id alone
    key = f"contribute:{m.id}:{decision.transaction_id}"
    if key in h.recent_events or f"contribute:{decision.transaction_id}" in h.recent_events:
        return HouseholdChange(h, m, 0, "already contributed")
    if decision.member_id != m.id or decision.transaction_id not in m.recent_transactions:
        raise InputError("apply the purchase to the member first", field="decision",
                         kind="household")
    # a purchase refunded (in part) before it is contributed counts for what is left of it:
    # the member's own record says what its refunds took back
    index, record = next(((k, r) for k, r in enumerate(m.purchases)
                          if r.id == decision.transaction_id), (-1, None))
    points, qualifying = decision.points_total, decision.qualifying_spend
    if record is not None:  # (read in the currency's unit, as a refund reads it)
        record = record_in_unit(record, index, program.quantum, program.currency)
        points -= record.points_reversed
        qualifying = max(qualifying - record.spend_reversed, Decimal(0))
    share = int((Decimal(points) * rules.share).to_integral_value(ROUND_FLOOR))
    share = min(share, max(m.points + m.pending_points, 0))
    book = _Book(m, at)
    # the pool must not make pending points usable sooner than they are for the member: the
    # pooled lot becomes usable when the purchase's own lots do (the latest of them)
    usable_from = max([lot.available_at for lot in book.lots
                       if lot.source == decision.transaction_id and lot.available_at > book.now],
                      default=at)
    moved = book._take(share, only_available=False, only=decision.transaction_id)
    book.redeemed += moved
    pool = _pool_book(h, at)
    zone = program.zone
    if moved:
        pool.earn(moved, f"{decision.transaction_id}:{m.id}", decision.transaction_id, m.id, at,
                  usable_from, expires_at(program.model.ledger.expiry, at, zone))
    spend = h.spend + qualifying
    if spend >= SPEND_LIMIT:  # (a state the library could not read back)
        raise EvaluationError("spend", f"the contribution brings the household's spend to "
                              f"{plain(spend)}, more than a spend can count (below 10^18)")
    contributions = dict(h.contributions)
    contributions[m.id] = contributions.get(m.id, 0) + moved
    new_m = book.state(m, household_spend=spend)
    new_h = _pool_state(h, pool, contributions=contributions, spend=spend,
                        recent_events=(*h.recent_events, key)[-500:],
                        member_versions=_versions(h, new_m, h.members))
    _held(new_h, new_m, "contribution")
    return HouseholdChange(new_h, new_m, moved,
                           f"{moved} of {decision.points_total} points to the pool")


@exact
def household_withdraw(program: Any, household: HouseholdState | dict[str, Any],
                       member: MemberState | dict[str, Any], points: int, at: datetime | str,
                       *, event_id: str) -> HouseholdChange:
    """Move pooled points to a member who may redeem from the pool (``redeem: all`` or the
    owner), as a lot the member then spends like any other; expiring lots go first. Only
    points usable in the pool at ``at`` can be withdrawn."""
    rules = _rules(program)
    h, m, when = _members_pair(program, household, member, at)
    if isinstance(points, bool) or not isinstance(points, int):
        raise InputError(f"a whole number of points, got {points!r}", field="points",
                         kind="household")
    if not event_id or not isinstance(event_id, str):
        raise InputError(f"an event id (a string) makes a retry safe, got {event_id!r}",
                         field="event_id", kind="household")
    if len(event_id) > ID_LENGTH:  # (held to a purchase id's length, as every event id is:
        # it is written into the household's and the member's ids, which read back bounded)
        raise InputError(f"must be at most {ID_LENGTH} characters long (got {len(event_id)})",
                         field="event_id", kind="household")
    text_of(event_id, "event_id", "household")
    if rules.redeem == "owner" and m.id != _owner(h):
        raise InputError("only the household's owner may use the pool", field="member",
                         kind="household")
    # remembered per member, as contributions are: two members' withdrawals may share an id;
    # households stored before this remember withdrawals by event id alone
    event = f"withdraw:{event_id}"
    key = f"withdraw:{m.id}:{event_id}"
    if key in h.recent_events or event in h.recent_events:
        return HouseholdChange(h, m, 0, "already withdrawn")
    if points <= 0:
        raise InputError(f"withdraw at least 1 point (got {points})", field="points",
                         kind="household")
    pool = _pool_book(h, when)
    usable, waiting = pool.available(), pool.pending()
    if points > usable:
        later = f" ({waiting} more pending)" if waiting else ""
        raise InputError(f"{points} points asked, {max(usable, 0)} usable in the pool{later}",
                         field="points", kind="household")
    pool.redeem(points)
    # the member brought to the withdrawal's moment first, as by every other event
    m, events = advance_state(program.model, m, when, program.zone)
    book = _Book(m, when)
    book.earn(points, f"{event}:{m.id}", event, "household", when, when,
              expires_at(program.model.ledger.expiry, when, program.zone))
    new_m = book.state(m, **_late_updates(program.model, book, when, m, program.zone, events))
    new_h = _pool_state(h, pool, recent_events=(*h.recent_events, key)[-500:],
                        member_versions=_versions(h, new_m, h.members))
    _held(new_h, new_m, "withdrawal")
    return HouseholdChange(new_h, new_m, points, f"{points} points from the pool",
                           tuple(events))


@exact
def household_leave(program: Any, household: HouseholdState | dict[str, Any],
                    member: MemberState | dict[str, Any], at: datetime | str
                    ) -> HouseholdChange:
    """A member leaves: by ``on_leave`` their contributions stay in the pool (``stay``),
    follow them out as far as the pool still holds them (``take_share``), or lapse
    (``forfeit``, counted as expired)."""
    rules = _rules(program)
    h, m, when = _members_pair(program, household, member, at)
    pool = _pool_book(h, when)
    mine = [lot for lot in pool.lots if lot.rule == m.id]
    held = sum(lot.points for lot in mine)
    m, events = advance_state(program.model, m, when, program.zone)  # (as every event does)
    book = _Book(m, when)
    moved = 0
    if rules.on_leave in ("take_share", "forfeit") and held:
        pool.lots = [lot for lot in pool.lots if lot.rule != m.id]
        if rules.on_leave == "take_share":
            pool.redeemed += held
            _take_out(book, mine, f"leave:{h.id}:{m.id}:{h.version}", f"leave:{h.id}", when)
            moved = held
        else:
            pool.expired += held
    members = tuple(x for x in h.members if x != m.id)
    # the owner's place passes to the member who joined first of those left; with no one
    # left, to no one (the next to join takes it): not to a member who has gone
    owner = _owner(h)
    if owner == m.id:
        owner = members[0] if members else None
    contributions = {k: v for k, v in h.contributions.items() if k != m.id}
    new_m = book.state(m, household=None, household_spend=None,
                       **_late_updates(program.model, book, when, m, program.zone, events))
    new_h = _pool_state(h, pool, members=members, owner=owner, contributions=contributions,
                        member_versions=_versions(h, new_m, members))
    _held(new_h, new_m, "leaving")
    return HouseholdChange(new_h, new_m, moved, f"{m.id} left {h.id} ({rules.on_leave})",
                           tuple(events))


def _take_out(book: _Book, lots: list[PointsLot], lot_id: str, source: str, when: datetime
              ) -> None:
    """Pooled lots into a member's book: one lot per instant they become usable (pending
    ones stay pending), each keeping the earliest expiry of its part. The household's version
    is in ``lot_id``, so leaving again after rejoining never repeats a lot's id."""
    parts: dict[datetime, list[PointsLot]] = {}
    for lot in lots:
        parts.setdefault(max(lot.available_at, when), []).append(lot)
    for n, (usable_from, part) in enumerate(sorted(parts.items(), key=lambda kv: kv[0])):
        book.earn(sum(lot.points for lot in part), lot_id if n == 0 else f"{lot_id}:{n}",
                  source, "household", when, usable_from, _earliest_expiry(part))


def _earliest_expiry(lots: list[PointsLot]) -> datetime | None:
    dates = [lot.expires_at for lot in lots if lot.expires_at is not None]
    return min(dates) if dates else None


def with_household(member: MemberState | dict[str, Any],
                   household: HouseholdState | dict[str, Any]) -> MemberState:
    """The member as evaluation should see them when tiers qualify on the group's spend
    (``tiers_on: group``): their copy of the household's spend brought up to date."""
    m = coerce(MemberState, member, "member")
    h = coerce(HouseholdState, household, "household")
    if m.id not in h.members:
        raise InputError(f"{m.id} is not in household {h.id}", field="member", kind="household")
    _check_current(h, m)
    return m.model_copy(update={"household_spend": h.spend})
