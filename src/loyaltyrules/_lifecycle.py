"""A member's life: points as lots, time passing, refunds, actions, rewards and tier reviews.

Everything here is a pure function of (program, member state, event): it returns a decision
that carries the member's next state. Every points movement goes through :class:`_Book`, which
keeps the ledger identity ``earned − redeemed − expired − reversed = points + pending``.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Container, Iterable, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from dateutil.relativedelta import relativedelta
from pydantic import BaseModel
from pydantic_core import TzInfo

from ._build import _set_dict, _set_fields, build, builder, new, shared_keys
from ._calendar import LATE, birthday_in_year, earlier_period, is_birthday, period_key, uses
from ._decision import (
    Decision,
    GiftDecision,
    HostAction,
    LifecycleDecision,
    LifecycleEvent,
    PointsLine,
    RefundResult,
    Status,
    TraceEntry,
    UsageConsumed,
    pending,
    trace_flag,
)
from ._errors import EvaluationError, InputError, show_value
from ._member import (
    CHANNEL_LENGTH,
    COUNT_LIMIT,
    ID_LENGTH,
    LineItem,
    MemberState,
    PointsLot,
    PointsTotals,
    PurchaseRecord,
    RedeemedPart,
    Transaction,
    Usage,
    event_from_text,
    fixed_offset,
    in_unit,
    kind_of,
    nested_fields,
    parse_instant,
    record_in_unit,
    spend_in_unit,
    text_of,
)
from ._model import Expiry, ProgramModel, Qualify
from ._money import SPEND_LIMIT, SPEND_ROOM, allocate, exact, give_largest, plain, quantum
from ._trace import limit_reached

if TYPE_CHECKING:
    from ._compile import LineShares, Plan

__all__ = [
    "Digest",
    "Redeeming",
    "advance",
    "apply_gift",
    "behaviour",
    "check_identity",
    "complete_purchase",
    "credit",
    "digest",
    "gift",
    "in_unit_state",
    "keep_lean",
    "on_file",
    "redeem_reward",
    "redemption_value",
    "refund",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)


def event_key(kind: str, event_id: str) -> str:
    """How an event id is remembered: purchases by their id, other events by kind and id, so
    a refund numbered like a purchase is not mistaken for it."""
    if kind in ("gift_out", "gift_in"):
        kind = "gift"
    return event_id if kind == "purchase" else f"{kind}:{event_id}"


PERIOD_POINTS = "points:max_per_period"
"""The usage entry counting a member's purchase points in the current max_per_period period
(":" is in no rule id, so it is no rule's)."""


def _count_use(usage: dict[str, Usage], key: str, period: str, used: int) -> None:
    """Record ``used`` more uses of a limited rule in ``period``. A member's usage keeps the
    latest period only (see _calendar.uses): an event of an earlier one leaves it as it is."""
    current = usage.get(key)
    if current is not None and earlier_period(period, current.period):
        return
    count = current.count if current is not None and current.period == period else 0
    usage[key] = new(Usage, period=period, count=count + used)


def _days_before(instant: datetime, days: int, zone: tzinfo) -> datetime:
    """``days`` days before ``instant`` by the program zone's clock, not in 24-hour days:
    across a daylight-saving change a warning keeps the local time of what it warns of."""
    if datetime.replace(instant, tzinfo=zone).utcoffset() == instant.utcoffset():
        # the instant's own wall time is the zone's (a midnight the library made, even one
        # the clocks skip: 00:00 at the offset before the change)
        wall, fold = instant.replace(tzinfo=None), 0
    else:
        local = instant.astimezone(zone)
        wall, fold = local.replace(tzinfo=None), local.fold
    return fixed_offset((wall - timedelta(days=days)).replace(tzinfo=zone, fold=fold))


def _like(bound: datetime, lots: list[PointsLot] | tuple[PointsLot, ...], field: str
          ) -> datetime:
    """``bound`` at the fixed UTC offset of the first lot's ``field``: the same instant, which
    a pass over the lots then compares fast. Two aware datetimes compare in about 30 ns when
    their tzinfo is one object and in 300-600 ns when not (each side's offset is asked for).
    Used where they differ: a lot's expiry is a midnight in the program's zone, while the
    bound is an event's time in the transaction's offset; and a lot's other times are its
    event's, while an advance's bounds may be midnights of its reviews. Converting costs
    about 500 ns, so it is done for three lots or more. (Only to a fixed offset: one
    object's times compare on the wall clock, fold and all, which is exact only where the
    offset never changes.)"""
    if len(lots) < 3:
        return bound
    sample = getattr(lots[0], field)
    tz = sample.tzinfo if sample is not None else None
    if tz is bound.tzinfo or type(tz) is not TzInfo:
        return bound
    return bound.astimezone(tz)


@lru_cache(maxsize=4096)
def _local_midnight(day: date, zone: tzinfo) -> datetime:
    # (with its offset, not its zone: where a zone's clocks skip midnight, a ZoneInfo
    # midnight would not equal its own JSON read back. Kept: a day's purchases all expire,
    # are released and warned of at the same few midnights)
    return fixed_offset(datetime(day.year, day.month, day.day, tzinfo=zone))


@lru_cache(maxsize=4096)
def _months_later(day: date, months: int) -> date:
    # (kept: a dateutil month step costs about 7 µs, and a day's purchases all ask it)
    return day + relativedelta(months=months)


def expires_at(expiry: Expiry, earned: datetime, zone: tzinfo) -> datetime | None:
    """When points earned at ``earned`` expire (a local midnight), or None."""
    day = expiry_day(expiry, earned.astimezone(zone).date())
    return None if day is None else _local_midnight(day, zone)


def expiry_day(expiry: Expiry, earned: date) -> date | None:
    """The local day at whose first moment points earned on ``earned`` expire, or None."""
    if expiry.months is not None:
        return _months_later(earned, expiry.months) + timedelta(days=1)
    if expiry.end_of_year is not None:
        return date(earned.year + expiry.end_of_year + 1, 1, 1)
    if expiry.end_of_quarter is not None:
        quarter = (earned.month - 1) // 3 + expiry.end_of_quarter + 1
        year = earned.year + quarter // 4
        return date(year, (quarter % 4) * 3 + 1, 1)
    return None


def untracked_points(member: MemberState, tracked: int | None = None) -> int:
    """The balance (and pending points) that the lots (holding ``tracked`` points, if
    counted already), less the debt, do not account for: a balance imported without lots,
    or edited by hand. Above zero it becomes an opening lot, counted as earned; below zero,
    a debt, counted as reversed — which must still be countable."""
    if tracked is None:
        tracked = 0
        for lot in member.lots:  # (a loop: this runs for every purchase of a member)
            points = lot.points
            if points > 0:
                tracked += points
    untracked = member.points + member.pending_points - (tracked - member.points_debt)
    if untracked < 0 and member.totals.reversed - untracked >= COUNT_LIMIT:
        raise InputError(f"a balance of {member.points} points is a debt of {-untracked} "
                         f"beyond the lots, which with the {member.totals.reversed} points "
                         "reversed already is more than a member's counts can hold (below "
                         "10^24)", field="points", kind="member")
    return untracked


class Digest(NamedTuple):
    """What each purchase asks of a member's whole history, kept with the state: whether a
    purchase id is on file, how many points the lots hold, whether any are pending, expiring
    or due to merge, which records leave the refund window. Without it each question is a
    pass over the history, and each read of a lot's or record's field costs about 400
    instructions (pydantic's ``BaseModel.__getattr__`` keeps Python from specialising it):
    about 4,700 instructions per record, per purchase. Made once from the history, then
    carried from state to state by each purchase (a copy of the columns, not a read of
    every lot), so a member with a year of history costs a purchase little more than a
    new one."""

    lots: tuple[PointsLot, ...]  # the state's own tuple: a digest describes it alone
    tracked: int  # the points the lots hold (each holds some: else no digest)
    # the lots not usable at ``as_of`` (in the lots' order): any lot not among them is
    # usable from then on (None: no lots, nothing pending at any time)
    as_of: datetime | None
    pending: tuple[PointsLot, ...]
    soonest: datetime | None  # the earliest expires_at (None: no lot expires)
    earned: tuple[datetime, ...]  # each lot's earned_at, in order
    earliest: datetime | None  # the two earliest of them (consolidate's question)
    second: datetime | None
    purchases: tuple[PurchaseRecord, ...]
    # the records' ids, and those of records dropped since (a set shared from state to
    # state, not copied on every purchase), with the ids added since: a hit is confirmed
    # in ``record_ids``
    ids: frozenset[str]
    ids_added: tuple[str, ...]
    record_ids: tuple[str, ...]  # each record's id and at, in order
    record_ats: tuple[datetime, ...]
    oldest: datetime | None  # the earliest record's at

    @property
    def expiring(self) -> bool:
        return self.soonest is not None

    def usable(self, now: datetime) -> bool:
        """Every lot the digest counts that is not among ``pending`` is usable at ``now``."""
        return self.as_of is None or self.as_of <= now


# A digest is kept for members with a history at least this long; shorter ones are read
# directly. (At ten purchases on file a digest saves about 14,000 instructions a streamed
# purchase, 2.5%, for about 1.1 KB a member; tests set it to 0 to use it always.)
DIGEST_FROM = 8


class _Ref(weakref.ref):  # type: ignore[type-arg]
    __slots__ = ("key",)
    key: int


def _forget(ref: _Ref) -> None:
    entry = _DIGESTS.get(ref.key)
    if entry is not None and entry[0] is ref:
        _DIGESTS.pop(ref.key, None)


# by id(member state), with a weak reference that drops the entry with the state: states are
# frozen, and the entry is used only while its tuples are still the state's own
_DIGESTS: dict[int, tuple[_Ref, Digest]] = {}


def digest(member: MemberState, fields: dict[str, Any]) -> Digest | None:
    """The digest of ``member`` (whose ``__dict__`` is ``fields``): made now, unless a
    purchase made it with the state; None for a short history, or for lots not all holding
    points (a state edited by hand)."""
    lots, purchases = fields["lots"], fields["purchases"]
    if len(lots) < DIGEST_FROM and len(purchases) < DIGEST_FROM:
        return None
    made = _known(member)
    if made is None:
        made = _digest_of(lots, purchases, fields["advanced_to"])
        if made is not None:
            _keep(member, made)
    return made


def _keep(member: MemberState, made: Digest) -> None:
    ref = _Ref(member, _forget)
    ref.key = id(member)
    _DIGESTS[ref.key] = (ref, made)


def _known(member: MemberState) -> Digest | None:
    """The digest kept for ``member``, if one is (none is made)."""
    entry = _DIGESTS.get(id(member))
    if entry is not None and entry[0]() is member:
        made = entry[1]
        fields = member.__dict__
        if made.lots is fields["lots"] and made.purchases is fields["purchases"]:
            return made
    return None


def _carry(member: MemberState, copy: MemberState) -> None:
    """A copy of ``member`` with its lots and records shares its digest, if it has one."""
    made = _known(member)
    if made is not None:
        fields = copy.__dict__
        if made.lots is fields["lots"] and made.purchases is fields["purchases"]:
            _keep(copy, made)


def in_unit_state(member: MemberState, q: Decimal, currency: str, kind: str = "member"
                  ) -> MemberState:
    """:func:`spend_in_unit`, the copy (of a state whose spend is written other than in the
    unit) sharing the digest of the state the host holds, made for it now if it has none: a
    copy is made anew on each call, and a host that evaluates the same state again (what-if
    baskets) would otherwise pay for its history each time (16.6 → 53.6 µs at 300 records)."""
    state = spend_in_unit(member, q, currency, kind)
    if state is not member:
        digest(member, member.__dict__)
        _carry(member, state)
    return state


# (tracked, soonest, earned_at, pending, latest available_at): see _lot_facts
_LotFacts = tuple[int, "datetime | None", list[datetime], list[PointsLot], "datetime | None"]


def _lot_facts(lots: Iterable[PointsLot], tracked: int, soonest: datetime | None,
               as_of: datetime | None) -> _LotFacts | None:
    """The points ``lots`` hold added to ``tracked``, the earliest of their expiries and
    ``soonest``, their earned_at, those not usable at ``as_of`` and their latest
    available_at; None if one of them holds no points."""
    earned = []
    pending = []
    latest = None
    for lot in lots:  # (one pass, each lot's fields read from its __dict__)
        f = lot.__dict__
        points = f["points"]
        if points <= 0:
            return None
        tracked += points
        available = f["available_at"]
        if as_of is not None and available > as_of:
            pending.append(lot)
        if latest is None or available > latest:
            latest = available
        expires = f["expires_at"]
        if expires is not None and (soonest is None or expires < soonest):
            soonest = expires
        earned.append(f["earned_at"])
    return tracked, soonest, earned, pending, latest


def _two_earliest(earned: tuple[datetime, ...]) -> tuple[datetime | None, datetime | None]:
    if len(earned) < 2:
        return (earned[0] if earned else None), None
    first, second = sorted(earned)[:2]  # (mostly in order already: sorting is a pass)
    return first, second


def _digest_of(lots: tuple[PointsLot, ...], purchases: tuple[PurchaseRecord, ...],
               as_of: datetime | None) -> Digest | None:
    """A digest made from the history itself, pending lots as of ``as_of`` (the state's
    moment; None: as of the last lot's available_at, when none is pending)."""
    facts = _lot_facts(lots, 0, None, as_of)
    if facts is None:
        return None
    tracked, soonest, earned_at, pending, latest = facts
    earned = tuple(earned_at)
    ids = []
    ats = []
    for record in purchases:
        f = record.__dict__
        ids.append(f["id"])
        ats.append(f["at"])
    return Digest(lots, tracked, latest if as_of is None else as_of, tuple(pending), soonest,
                  earned, *_two_earliest(earned), purchases, frozenset(ids), (), tuple(ids),
                  tuple(ats), min(ats) if ats else None)


def _merged(old: list[PointsLot]) -> list[PointsLot]:
    """Old lots merged per expiry date (see :meth:`_Book.consolidate`), in the order their
    expiry dates first appear; a lot alone in its expiry date stays as it is."""
    groups: dict[datetime | None, list[PointsLot]] = {}
    for lot in old:
        groups.setdefault(lot.expires_at, []).append(lot)
    merged = []
    for expiry, lots in groups.items():
        if len(lots) == 1:
            merged.append(lots[0])
            continue
        first = min(lot.earned_at for lot in lots)
        merged.append(new(PointsLot, id=f"merged:{expiry.isoformat() if expiry else 'never'}",
                          points=sum(lot.points for lot in lots),
                          earned=sum(lot.earned for lot in lots), earned_at=first,
                          available_at=max(lot.available_at for lot in lots),
                          expires_at=expiry, source="merged", rule="merged"))
    return merged


# the builders of the models every purchase makes, held (build() looks one up per call)
_MAKE_LOT = builder(PointsLot)
_MAKE_TOTALS = builder(PointsTotals)
_MAKE_STATE = builder(MemberState)
_MAKE_RECORD = builder(PurchaseRecord)
_NEW_LOT = shared_keys(PointsLot)  # (the dicts their values are set in: see shared_keys)
_NEW_TOTALS = shared_keys(PointsTotals)


class _Book:
    """The points of one member during one operation; lots in, lots out, totals kept."""

    # what state() found added to the lots its digest counts, and pending among them (in
    # their order): set only when it used the digest
    added: list[PointsLot] | None = None
    waiting: list[PointsLot] = []  # noqa: RUF012 (never changed: state() sets its own)

    def __init__(self, member: MemberState, now: datetime) -> None:
        # the lots with points left, and how many they hold, in one pass (this runs for every
        # event of a member, who may hold a year of lots)
        fields = member.__dict__
        self.digest = made = digest(member, fields)
        if made is not None:
            kept = list(made.lots)
            tracked = made.tracked
        else:
            kept = []
            tracked = 0
            for lot in fields["lots"]:
                points = lot.points
                if points > 0:
                    kept.append(lot)
                    tracked += points
        self.lots = kept
        # the lots as the digest counts them, while only added to (see state())
        self._counted, self._held = kept, len(kept)
        self.expired_by_source: dict[str, int] = {}
        t: dict[str, int] = fields["totals"].__dict__
        self.earned, self.redeemed, self.expired = t["earned"], t["redeemed"], t["expired"]
        self.reversed, self.shortfall = t["reversed"], t["shortfall"]
        self.debt: int = fields["points_debt"]
        self.repaid: list[RedeemedPart] = []  # earned points that repaid the debt
        # an event dated before the member's last advance cannot make points pending again
        self.now = max(now, advanced) if (advanced := fields["advanced_to"]) else now
        # a balance imported without lots (or edited by hand) becomes an "opening" lot, so
        # the identity holds from the first operation on: counted as earned as far as the
        # totals do not count it already (a state imported with its earned total too was
        # counted twice: earned 200 for a balance of 100)
        # (untracked_points, its sum written out: it runs for every event of a member; the
        # function checks what a debt beyond the lots may count)
        untracked = fields["points"] + fields["pending_points"] - (tracked - self.debt)
        if untracked < 0:
            untracked = untracked_points(member, tracked)
        if untracked:
            # what the totals leave the balance short of (earned − redeemed − expired −
            # reversed = points + pending)
            short = fields["points"] + fields["pending_points"] - (
                self.earned - self.redeemed - self.expired - self.reversed)
        if untracked > 0:
            self.lots.append(new(PointsLot,
                id=f"opening:{member.id}:{member.version}", points=untracked, earned=untracked,
                earned_at=member.advanced_to or now, available_at=member.advanced_to or now,
                source="opening-balance", rule="opening-balance"))
            self.earned += min(max(short, 0), untracked)
        elif untracked < 0:
            # a balance imported below what the lots hold (below zero, say) is a debt owed
            # from before: counted as reversed, as debts the ledger makes itself are (as far
            # as the totals do not count it already)
            self.debt -= untracked
            self.reversed += min(max(-short, 0), -untracked)

    def available(self) -> int:
        now = self.now
        return sum([lot.points for lot in self.lots if lot.available_at <= now]) - self.debt

    def pending(self) -> int:
        now = self.now
        return sum([lot.points for lot in self.lots if lot.available_at > now])

    def earn(self, points: int, lot_id: str, source: str, rule: str, at: datetime,
             available_at: datetime, expires: datetime | None) -> None:
        if points <= 0:
            return
        self.earned += points
        debt = self.debt
        repay = debt if debt < points else points  # (min(), without a call)
        if repay:
            self.debt -= repay
            self.repaid.append(build(RedeemedPart, {
                "expires_at": expires, "points": repay, "source": source,
                "available_at": available_at}))
        if points - repay > 0:
            lot = _NEW_LOT.copy()  # (its keys shared: see shared_keys)
            lot["id"] = lot_id
            lot["points"] = points - repay
            lot["earned"] = points
            lot["earned_at"] = at
            lot["available_at"] = available_at
            lot["expires_at"] = expires
            lot["source"] = source
            lot["rule"] = rule
            self.lots.append(_MAKE_LOT(lot))

    def _order(self, usable_first: bool = False) -> list[PointsLot]:
        # expiring first; lots that never expire last; ties oldest first (with
        # ``usable_first``, the usable, then those usable soonest, as _settle_taken ranks)
        far = datetime.max.replace(tzinfo=self.now.tzinfo)
        if usable_first:
            now = self.now
            return sorted(self.lots, key=lambda lot: (
                lot.expires_at or far, max(lot.available_at, now), lot.earned_at, lot.id))
        return sorted(self.lots, key=lambda lot: (lot.expires_at or far, lot.earned_at, lot.id))

    def _take(self, points: int, *, only_available: bool, prefer: str | None = None,
              only: str | None = None,
              taken_from: list[Taken] | None = None) -> int:
        taken = 0
        # (points taken in place of spent ones are ranked as _settle_taken ranks them)
        order = self._order(usable_first=taken_from is not None and not only_available)
        if only is not None:
            order = [lot for lot in order if lot.source == only]
        if prefer is not None:
            order = [lot for lot in order if lot.source == prefer] + [
                lot for lot in order if lot.source != prefer]
        # (lots are told apart by object, not by id: a state edited by hand, or made before
        # ids were namespaced by event kind, can hold two lots of one id)
        replaced: dict[int, PointsLot] = {}
        now = self.now
        for lot in order:
            if taken >= points:
                break
            if only_available and lot.available_at > now:
                continue
            use = min(lot.points, points - taken)
            taken += use
            if taken_from is not None and use:
                taken_from.append((lot.expires_at, lot.source, lot.available_at, use))
            replaced[id(lot)] = lot.model_copy(update={"points": lot.points - use})
        self.lots = [replaced.get(id(lot), lot) for lot in self.lots]
        self.lots = [lot for lot in self.lots if lot.points > 0]
        return taken

    def redeem(self, points: int, kind: str = "transaction", field: str = "redeem_points",
               taken_from: list[Taken] | None = None) -> None:
        if points > self.available():
            raise InputError(f"{points} points asked, {max(self.available(), 0)} available",
                             field=field, kind=kind)
        self.redeemed += self._take(points, only_available=True, taken_from=taken_from)

    def reverse(self, points: int, source: str, allow_negative: bool, expired: int,
                taken_from: list[Taken]) -> tuple[int, int, int]:
        """Take back points earned on ``source``: what is left of its own lots first; what of
        it already expired is gone (not taken twice); the rest was spent, and is taken from
        the other lots (told in ``taken_from``, to be given back if what they were spent on
        is refunded). Returns (reversed, shortfall, counted as expired)."""
        taken = self._take(points, only_available=False, prefer=None, only=source)
        missing = points - taken
        absorbed = min(missing, expired)
        missing -= absorbed
        if missing:
            more = self._take(missing, only_available=False, taken_from=taken_from)
            taken += more
            missing -= more
        self.reversed += taken
        if missing and allow_negative:
            self.debt += missing
            self.reversed += missing
            return taken + missing, 0, absorbed
        self.shortfall += missing
        return taken, missing, absorbed

    def restore(self, points: int, lot_id: str, source: str, at: datetime,
                expires: datetime | None,
                instead: Callable[[int], list[RedeemedPart]] | None = None,
                settle: int | None = None
                ) -> tuple[int, int, int, list[RedeemedPart]]:
        """Points that paid for a refunded purchase come back: an un-redemption. They first
        repay a debt, then make good a shortfall (points an earlier refund could not take
        back because they had been spent — often on this very purchase), so refunds undo
        the same whatever their order. Of the rest, the points an earlier refund took in
        their place (``instead``) come back as the lots they were, the others as a lot of
        ``expires``. With ``settle`` given (points past their expiry, or points an earlier
        refund took others in place of), the points first repay at most ``settle`` (what
        that refund owes for them): the points that come back in their place, alive, make
        good the rest of a debt or shortfall as any points given back do, and only then the
        rest of the points themselves, if alive (an earlier refund's points are what it took
        in their place: they come back so, whatever else is owed). Returns (the shortfall
        made good, points given back already expired, what the points themselves made good,
        the parts that came back in their place and made good a debt or shortfall)."""
        if points <= 0:
            return 0, 0, 0, []
        self.redeemed -= points
        repay, recovered = self._make_good(points if settle is None else min(points, settle))
        first = repay + recovered
        left = points - first
        gone = 0
        made: list[RedeemedPart] = []
        for k, part in enumerate(instead(left) if instead is not None and left > 0 else ()):
            left -= part.points
            if part.expires_at is not None and part.expires_at <= at:
                self.expired += part.points
                self.count_expired(part.source, part.points)
                gone += part.points
                continue
            n = part.points
            if settle is not None and (self.debt or self.shortfall):
                back, good = self._make_good(n)
                recovered += good
                if back + good:
                    made.append(part.model_copy(update={"points": back + good}))
                    n -= back + good
                if not n:
                    continue
            self.lots.append(new(PointsLot, id=f"{lot_id}:was:{k + 1}", points=n,
                                 earned=n, earned_at=at,
                                 available_at=max(part.available_at or at, at),
                                 expires_at=part.expires_at, source=part.source or source,
                                 rule="refund-return"))
        if left > 0 and expires is not None and expires <= at:
            # (past their expiry, with no points taken in their place left to come back)
            self.expired += left
            self.count_expired(source, left)
            gone += left
        elif left > 0 and settle is not None and (self.debt or self.shortfall):
            # (alive, after what an earlier refund took in their place came back: the rest
            # of a debt or shortfall is theirs to make good, as any live points')
            back, good = self._make_good(left)
            recovered += good
            if back + good:
                made.append(build(RedeemedPart, {
                    "expires_at": expires, "points": back + good, "source": source,
                    "available_at": at}))
                left -= back + good
        if left > 0 and (expires is None or expires > at):
            self.lots.append(new(PointsLot, id=lot_id, points=left,
                                 earned=points, earned_at=at, available_at=at,
                                 expires_at=expires, source=source, rule="refund-return"))
        return recovered, gone, first, made

    def _make_good(self, points: int) -> tuple[int, int]:
        """Points given back repay the debt, then make good the shortfall: returns (repaid,
        made good)."""
        back = min(self.debt, points)
        self.debt -= back
        good = min(self.shortfall, points - back)
        self.shortfall -= good
        self.reversed += good
        return back, good

    def count_expired(self, source: str | None, points: int) -> None:
        """Points of ``source`` expired (counted on its purchase record, if it has one)."""
        if source is not None:
            self.expired_by_source[source] = self.expired_by_source.get(source, 0) + points

    def expire(self, until: datetime) -> list[tuple[PointsLot, datetime]]:
        until = _like(until, self.lots, "expires_at")
        gone = [(lot, lot.expires_at) for lot in self.lots
                if lot.expires_at is not None and lot.expires_at <= until]
        if gone:
            ids = {id(lot) for lot, _ in gone}
            self.lots = [lot for lot in self.lots if id(lot) not in ids]
            self.expired += sum(lot.points for lot, _ in gone)
            for lot, _ in gone:
                self.expired_by_source[lot.source] = (
                    self.expired_by_source.get(lot.source, 0) + lot.points)
        return [(lot, when) for lot, when in gone if when is not None]

    def expire_earned_before(self, when: datetime) -> int:
        """Inactivity expiry at ``when`` of the lots that existed then (a late event's
        lot, say), not of those earned after it."""
        gone = [lot for lot in self.lots if lot.earned_at < when]
        if not gone:
            return 0
        ids = {id(lot) for lot in gone}
        self.lots = [lot for lot in self.lots if id(lot) not in ids]
        for lot in gone:
            self.expired_by_source[lot.source] = (
                self.expired_by_source.get(lot.source, 0) + lot.points)
        total = sum(lot.points for lot in gone)
        self.expired += total
        return total

    def expire_all(self) -> int:
        for lot in self.lots:
            self.expired_by_source[lot.source] = (
                self.expired_by_source.get(lot.source, 0) + lot.points)
        total = sum(lot.points for lot in self.lots)
        self.lots = []
        self.expired += total
        return total

    def consolidate(self, before: datetime) -> None:
        """Lots earned before ``before`` (the refund window's start) and already usable are
        merged per expiry date: a member's lots stay bounded by the refund window, not by
        their whole history. Recent lots keep their event and rule."""
        if len(self.lots) < 2:
            return
        now = self.now
        made = self.digest
        if made is not None and self.lots is self._counted and made.usable(now):
            added = self.lots[self._held:]
            young = True  # (loops, not all() and any() over generators: each costs a frame)
            for lot in added:
                if lot.__dict__["earned_at"] < before:
                    young = False
                    break
            if young and (made.second is None or made.second >= before):
                return  # one lot old at most, of those counted, and those added are young
            if young:
                for lot in made.pending:
                    f = lot.__dict__
                    if f["earned_at"] < before and f["available_at"] > now:
                        young = False
                        break
            if young:
                # every lot counted is usable but the pending, and lots added since are
                # young: which are old, the digest's column says
                folded = _lot_facts(added, made.tracked, made.soonest, now)
                if folded is not None:
                    self._consolidate_counted(made, before, folded)
                    return
        old = []
        for lot in self.lots:  # (each lot's fields read from its __dict__)
            f = lot.__dict__
            if f["earned_at"] < before and f["available_at"] <= now:
                old.append(lot)
        if len(old) < 2:
            return
        ids = {id(lot) for lot in old}
        self.lots = [lot for lot in self.lots if id(lot) not in ids] + _merged(old)

    def _consolidate_counted(self, made: Digest, before: datetime, folded: _LotFacts) -> None:
        """consolidate() for lots counted by the digest and lots added since (young), asking
        the digest's column which are old instead of every lot."""
        if made.second is None or made.second >= before:
            return  # (one at most: merging needs two)
        old: list[PointsLot] = []
        kept: list[PointsLot] = []
        left: list[datetime] = []
        tracked, soonest, added, pending, _ = folded  # (merging keeps the points and expiries)
        for lot, at in zip(self.lots, (*made.earned, *added), strict=True):  # one pass
            if at < before:
                old.append(lot)
            else:
                kept.append(lot)
                left.append(at)
        if len(old) < 2:
            return
        merged = _merged(old)
        self.lots = kept + merged
        for lot in merged:
            left.append(lot.earned_at)
        earned = tuple(left)
        earliest, second = _two_earliest(earned)
        now = self.now  # (pending lots are young: none was merged)
        waiting = [lot for lot in made.pending if lot.available_at > now]
        self.digest = made._replace(lots=tuple(self.lots), tracked=tracked, as_of=now,
                                    pending=(*waiting, *pending), soonest=soonest,
                                    earned=earned, earliest=earliest, second=second)
        self._counted, self._held = self.lots, len(self.lots)

    def state(self, member: MemberState, **updates: Any) -> MemberState:
        """The member's next state: its points as this book holds them, with ``updates``."""
        return self.state_with(member, updates)

    def state_with(self, member: MemberState, updates: dict[str, Any]) -> MemberState:
        """:meth:`state`, given its updates as a dict of its own (changed here when debts
        were repaid): the purchase path calls this, as passing the dict costs about 550 ns
        less than ``**updates`` (unpacked by the call, packed again by the callee)."""
        if self.repaid:
            self._repaid_for_refunds(member, updates)
        counts = _NEW_TOTALS.copy()  # (its keys shared: see shared_keys)
        counts["earned"] = self.earned
        counts["redeemed"] = self.redeemed
        counts["expired"] = self.expired
        counts["reversed"] = self.reversed
        counts["shortfall"] = self.shortfall
        totals = _MAKE_TOTALS(counts)
        usable = waiting = 0
        now = _like(self.now, self.lots, "available_at")  # (a review's midnight, say)
        lots: list[PointsLot] = self.lots
        made = self.digest
        if made is not None and lots is self._counted and made.usable(now):
            # only added to since the digest: its pending lots and the added ones alone
            pending = self.waiting = []
            for lot in made.pending:
                if lot.available_at > now:
                    waiting += lot.points
                    pending.append(lot)
            usable = made.tracked - waiting
            lots = self.added = lots[self._held:]
            for lot in lots:
                if lot.available_at > now:
                    pending.append(lot)
        for lot in lots:  # available() and pending() in one pass
            if lot.available_at <= now:
                usable += lot.points
            else:
                waiting += lot.points
        # one dict, in the member's field order; its keys shared when the member's were (a
        # state the library built, or one keep_lean made lean: see shared_keys)
        fields = member.__dict__
        values = fields.copy()
        values["lots"] = tuple(self.lots)
        values["totals"] = totals
        values["points"] = usable - self.debt
        values["pending_points"] = waiting
        values["points_debt"] = self.debt
        values["version"] = fields["version"] + 1
        values.update(updates)
        # the state's values are the engine's own (no validation needed, as model_copy),
        # and, as model_copy, it counts as set what the member had set and what changed
        state = _MAKE_STATE(values)
        _set_fields(state, _fields_after(member.__pydantic_fields_set__, updates))
        return state

    def _repaid_for_refunds(self, member: MemberState, updates: dict[str, Any]) -> None:
        """Earned points that repaid a debt refunds owe (``points_unpaid``): those refunds
        owe that much less, and hold the points as if they had taken them in place of their
        spent ones (as a refund after the earning would have), to give them back if what
        those were spent on is refunded. A debt no refund owes (a balance imported below
        zero) is taken as repaid first. Updates ``updates``' purchases."""
        purchases = updates.get("purchases", member.purchases)
        owing = 0
        for record in purchases:
            owing += record.points_unpaid
        excess = owing - self.debt - self.shortfall
        if excess <= 0:
            return
        changed: dict[str, PurchaseRecord] = {}
        repaid = 0
        for part in self.repaid:
            repaid += part.points
        stale = excess - repaid  # owed beyond the debt and shortfall before these points
        if stale > 0:
            # (a state stored before earned points were recorded so, its debt repaid since:
            # the oldest owe it no more, and these points go to what is still owed)
            for record in purchases:
                n = min(record.points_unpaid, stale)
                if n > 0:
                    stale -= n
                    excess -= n
                    changed[record.id] = record.model_copy(
                        update={"points_unpaid": record.points_unpaid - n})
                    if not stale:
                        break
            purchases = tuple(changed.get(p.id, p) for p in purchases)
        for part in self.repaid:
            take = min(part.points, excess)
            _owed_elsewhere(purchases, changed, part if take == part.points
                            else part.model_copy(update={"points": take}))
            excess -= take
            if not excess:
                break
        updates["purchases"] = tuple(changed.get(p.id, p) for p in purchases)


_BOOK_FIELDS = frozenset({"lots", "totals", "points", "pending_points", "points_debt",
                          "version"})


def _fields_after(had: set[str], updates: dict[str, Any]) -> set[str]:
    """What a next state counts as set: what the member had, and what changed. One set is
    shared by every state alike, as output models share theirs (pydantic copies it before
    a ``model_copy`` updates it, and a frozen model is never updated in place): a set of
    the state's 27 fields takes 1–2 KB, and a stream keeps a state per member."""
    if id(had) in _SHARED_IDS:  # (an id is a key only while its set is kept alive here)
        key: tuple[Any, ...] = (id(had), *updates)
        shared = _FIELDS_AFTER.get(key)
        if shared is not None:
            return shared
        cache = _FIELDS_AFTER
    else:  # a set of its own (a state pydantic validated): found by what it holds
        key = (frozenset(had), *updates)
        shared = _FIELDS_AFTER_OF.get(key)
        if shared is not None:
            return shared
        cache = _FIELDS_AFTER_OF
    union = had.union(_BOOK_FIELDS, updates)
    if len(_SHARED) >= _SHARED_KEPT or len(cache) >= _SHARED_KEPT:
        return union  # (fields are few, their combinations bounded: a guard)
    shared = _SHARED.setdefault(frozenset(union), union)
    _SHARED_IDS.add(id(shared))
    cache[key] = shared  # (keys: the sets had, by the code paths' update keys)
    return shared


_SHARED: dict[frozenset[str], set[str]] = {}  # each set shared, kept for good
_SHARED_IDS: set[int] = set()  # their ids
_FIELDS_AFTER: dict[tuple[Any, ...], set[str]] = {}  # by (id of a shared set, update keys)
_FIELDS_AFTER_OF: dict[tuple[Any, ...], set[str]] = {}  # by (a set's content, update keys)
_SHARED_KEPT = 1024


def keep_lean(model: BaseModel) -> None:
    """Make a model pydantic validated, and every model in it, as lean as the library's own:
    its set of fields the shared one (see :func:`_fields_after`), and its values in a dict
    of shared keys (see :func:`shared_keys`). pydantic gives each model it reads a set of its
    own and a dict of its own, 2.3 KB and 0.5 KB for a purchase record, which made a member
    state read from JSON with a year of purchases take almost three times the memory of the
    same state built by the library. For ``loyaltyrules run``, which keeps every state it
    reads or starts, before anything else reads it; the values are not touched."""
    had = model.__pydantic_fields_set__
    if id(had) not in _SHARED_IDS:
        key = frozenset(had)
        shared = _SHARED.get(key)
        if shared is not None:
            _set_fields(model, shared)
        elif len(_SHARED) < _SHARED_KEPT // 2:  # (half kept for the engine's own sets: a
            _SHARED[key] = had                   # file of members each with fields of
            _SHARED_IDS.add(id(had))             # their own leaves the next states shared)
    cls = type(model)
    fields = model.__dict__
    values = shared_keys(cls)  # (a copy of the class's table, which _build keeps)
    count = len(values)
    values.update(fields)
    if len(values) == count:  # (the model's fields and no more, in its order)
        _set_dict(model, values)
    for name in nested_fields(cls):
        value = fields[name]
        for inner in (value.values() if isinstance(value, dict) else
                      value if isinstance(value, (tuple, list)) else (value,)):
            if isinstance(inner, BaseModel):
                keep_lean(inner)



def check_identity(member: MemberState | dict[str, Any] | str) -> bool:
    """earned − redeemed − expired − reversed = points + pending_points, and the lots add up.
    The member is read as every call reads it (a model, a dict or JSON text; malformed: an
    InputError)."""
    from ._member import coerce

    member = coerce(MemberState, member, "member")
    t = member.totals
    lots = sum(lot.points for lot in member.lots)
    return (t.earned - t.redeemed - t.expired - t.reversed
            == member.points + member.pending_points == lots - member.points_debt)


# --- qualifying spend windows and tier reviews ------------------------------------------------


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def spend_crowded(fields: dict[str, Any]) -> bool:
    """Whether a purchase could bring the member's spend (``fields``, a state's __dict__) to
    SPEND_LIMIT: its qualifying spend or a month of its spend log is SPEND_ROOM or more."""
    if fields["qualifying_spend"] >= SPEND_ROOM:
        return True
    return any(value >= SPEND_ROOM for value in fields["spend_log"].values())


def spend_fits(model: ProgramModel, member: MemberState, decision: Any) -> None:
    """Refuse a purchase that would bring ``member``'s qualifying spend, or its spend log's
    month, to SPEND_LIMIT: the next state would be one the library cannot read back."""
    spend = decision.qualifying_spend
    day = decision.local_date
    month = _month(day)
    sums = [("qualifying spend", member.qualifying_spend + spend)]
    if _log_oldest(model, day) is not None:  # (a program without a window keeps no log)
        sums.append((f"spend in {month}", member.spend_log.get(month, _ZERO) + spend))
    for what, total in sums:
        if total >= SPEND_LIMIT:
            raise EvaluationError("qualifying_spend", f"the purchase brings the member's {what} "
                                  f"to {plain(total)}, more than a member's spend can count "
                                  "(below 10^18)")


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


@lru_cache(maxsize=4096)
def _month_keys(first: int, last: int) -> tuple[str, ...]:
    """The spend log's keys of the months ``first``..``last`` (month indexes). Kept: every
    purchase of a month asks for the same window (a dateutil month step per month cost
    about 7 µs, a twelve-month window 0.1 ms a purchase)."""
    # (a window reaching before the year 1 starts at its January: no spend is logged before)
    return tuple(f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(max(first, 12), last + 1))


def window_months(model: ProgramModel, member: MemberState, today: date
                  ) -> tuple[str, ...] | None:
    """The calendar months whose spend counts for tiers now, or None for lifetime spend."""
    reviews = model.reviews
    last = _month_index(today)
    if reviews.rolling_months is not None:
        return _month_keys(last - (reviews.rolling_months - 1), last)
    if reviews.window == "calendar_year":
        return _month_keys(today.year * 12, last)
    if reviews.window == "membership_year":
        # the year turns on the anniversary itself (as anniversary reviews fall), not on the
        # 1st of its month: a review on 2 March judges the year to 1 March, months 3 to 3
        joined = member.joined or today
        first = birthday_in_year(joined, today.year, "feb28")
        if first > today:
            first = birthday_in_year(joined, today.year - 1, "feb28")
        return _month_keys(_month_index(first), last)
    return None


def window_spend(model: ProgramModel, member: MemberState, today: date) -> Decimal:
    households = model.households
    if households is not None and households.tiers_on == "group" \
            and member.household_spend is not None:
        return member.household_spend
    months = window_months(model, member, today)
    if months is None:
        return member.qualifying_spend
    log = member.spend_log
    # (in the currency's unit, as every amount is said: "window spend 0.00", not "0", for
    # a window with no purchase in it)
    spend = _ZERO.quantize(quantum(model.program.units))
    for month in months:
        if month in log:
            spend += log[month]
    return spend


def _prune_log(model: ProgramModel, log: dict[str, Decimal], today: date) -> dict[str, Decimal]:
    oldest = _log_oldest(model, today)
    if oldest is None:
        return {}
    return {m: v for m, v in log.items() if m >= oldest}


def _log_oldest(model: ProgramModel, today: date) -> str | None:
    """The oldest month the spend log must keep, or None when no window needs it."""
    reviews = model.reviews
    if reviews.rolling_months is None and reviews.window == "lifetime":
        return None
    oldest = _month_index(today) - ((reviews.rolling_months or 12) + 12)
    return f"{oldest // 12:04d}-{oldest % 12 + 1:02d}"


def member_view(model: ProgramModel, m: MemberState) -> dict[str, Any]:
    """What expressions see as ``member`` (docs/expressions.md)."""
    tier = m.tier or model.tiers[0].id
    rank = next((i for i, t in enumerate(model.tiers) if t.id == tier), 0)
    return {
        "id": m.id, "tier": tier, "tier_rank": rank, "points": m.points,
        "qualifying_spend": m.qualifying_spend, "orders": m.orders, "birthday": m.birthday,
        "joined": m.joined, "last_purchase": m.last_purchase, "attrs": dict(m.attrs),
    }


def _review_condition(model: ProgramModel, member: MemberState, tier_id: str, expr: Any,
                      at: datetime) -> bool:
    """A tier's ``when:`` at a review: judged on the member alone (no purchase: the
    transaction is empty, its amount 0)."""
    from ._errors import EvaluationError
    from ._expressions import ExpressionRuntimeError, Scope

    day = at.date()
    policy = model.policies.birthday
    txn = {"id": "review", "amount": Decimal(0), "channel": "", "store": None, "at": at,
           "date": day, "weekday": day.isoweekday(), "hour": 0, "items_count": 0,
           "quantity": 0, "shipping": Decimal(0), "tax": Decimal(0),
           "paid_with_points": Decimal(0), "attrs": {}}
    scope = Scope(member=member_view(model, member), txn=txn, items=[], today=day,
                  birthday_test=lambda kind: is_birthday(member.birthday, day, kind,
                                                         feb29=policy.feb29, week=policy.week))
    try:
        result = expr.evaluate(scope)
    except ExpressionRuntimeError as exc:
        raise EvaluationError(tier_id, str(exc)) from None
    if not isinstance(result, bool):
        raise EvaluationError(tier_id, f"`{expr}` gave {result!r}, not true or false")
    return result


def _kept_until(model: ProgramModel, day: date) -> date | None:
    keep = model.reviews.keep
    if keep is None:
        return None
    if keep.until == "end_of_year":
        return date(day.year, 12, 31)
    if keep.until == "end_of_next_year":
        return date(day.year + 1, 12, 31)
    if keep.months is not None:
        return _months_later(day, keep.months)
    return None


def _review_days(model: ProgramModel, member: MemberState, start: date, end: date
                 ) -> list[date]:
    """Local review days in (start, end]."""
    reviews = model.reviews
    if reviews.schedule is not None:
        schedule = reviews.schedule
        if end.year - start.year <= 2:  # (the usual step: each year's days are kept)
            return [day for year in range(start.year, end.year + 1)
                    for day in schedule.days_in(year) if start < day <= end]
        # a long step (a state years behind, a year mistyped 6026): one walk over the span,
        # not one per year from the schedule's start, which grew with the square of the span
        return [day for day in schedule.days_between(start, end) if start < day <= end]
    if reviews.anniversary and member.joined is not None:
        out = []
        for year in range(start.year, end.year + 1):
            day = birthday_in_year(member.joined, year, "feb28")
            if start < day <= end and day > member.joined:
                out.append(day)
        return out
    return []


def _review(model: ProgramModel, member: MemberState, day: date, at: datetime
            ) -> tuple[MemberState, list[LifecycleEvent]]:
    tiers = model.tiers
    current = member.tier or tiers[0].id
    rank = next(i for i, t in enumerate(tiers) if t.id == current)
    # the review judges the window that has just ended: the day before the review day
    spend = window_spend(model, member, day - timedelta(days=1))
    points, orders = member.points, member.orders
    def meets(q: Qualify | None, tier_id: str) -> bool:
        if q is None:
            return False
        when = None if q.when is None else _review_condition(model, member, tier_id, q.when, at)
        return q.met(spend, points, orders, when)

    moved = rank
    for i in range(rank + 1, len(tiers)):
        q = tiers[i].qualify
        if meets(q, tiers[i].id):
            moved = i
    # a review that does not move the member down ends a run of falls
    stays = member.model_copy(update={"tier_falls": 0}) if member.tier_falls else member
    if moved == rank and rank > 0:
        target = 0
        for i in range(rank, 0, -1):
            q = tiers[i].retain or tiers[i].qualify
            if meets(q, tiers[i].id):
                target = i
                break
        if target < rank:
            if member.tier_kept_until is not None and day <= member.tier_kept_until:
                missed = _measured(tiers[rank].retain or tiers[rank].qualify, spend, points,
                                   orders)
                return stays, [new(LifecycleEvent,
                    at=at, type="tier_kept", tier_from=current, tier_to=current,
                    detail=f"{missed} misses {current}, but the tier is kept until "
                           f"{member.tier_kept_until.isoformat()}")]
            floor = rank - model.reviews.max_drop if model.reviews.max_drop else 0
            moved = max(target, floor)
    judged = _judged(tiers, spend, points, orders)
    if moved == rank:
        return stays, [new(LifecycleEvent, at=at, type="tier_review", tier_from=current,
                                       tier_to=current, detail=judged)]
    to = tiers[moved].id
    kind = "tier_upgraded" if moved > rank else "tier_downgraded"
    # an upgrade earns a new keep date; a tier reached by falling is kept by nothing (the
    # old date, already past, would only mislead whoever reads the state)
    updates: dict[str, Any] = {"tier": to, "tier_since": day,
                               "tier_kept_until": _kept_until(model, day) if moved > rank
                               else None,
                               "tier_falls": 0 if moved > rank else member.tier_falls + 1}
    return member.model_copy(update=updates), [new(LifecycleEvent,
        at=at, type=kind, tier_from=current, tier_to=to,
        detail=f"review on {day.isoformat()}: {judged}")]


def _judged(tiers: Sequence[Any], spend: Decimal, points: int, orders: int) -> str:
    """What a review measured, as the program's tiers qualify and retain: "window spend
    150.00", "points 50", "window spend 150.00, orders 2" (a spend tier's words when the
    tiers judge only conditions)."""
    said = []
    for name, text in (("spend", f"window spend {spend:f}"), ("points", f"points {points}"),
                       ("orders", f"orders {orders}")):
        if any(getattr(q, name) is not None for t in tiers[1:]
               for q in (t.qualify, t.retain) if q is not None):
            said.append(text)
    return ", ".join(said) or f"window spend {spend:f}"


def _measured(q: Qualify | None, spend: Decimal, points: int, orders: int) -> str:
    """What a review measured against a tier's criteria, named as the tier names them
    ("points 50", "spend 150.00, orders 2"): a points tier is not missed on spend."""
    assert q is not None  # (a tier above the first has qualify: LR405)
    measured = []
    if q.spend is not None:
        measured.append(f"spend {spend:f}")
    if q.points is not None:
        measured.append(f"points {points}")
    if q.orders is not None:
        measured.append(f"orders {orders}")
    if q.when is not None:
        measured.append(f"`{q.when}`")
    return ", ".join(measured)


# --- signals --------------------------------------------------------------------------------


def _signals(model: ProgramModel, member: MemberState, lots: tuple[PointsLot, ...],
             start: datetime, until: datetime, zone: tzinfo, fired: dict[str, str],
             made: Digest | None = None) -> list[LifecycleEvent]:
    """Time-driven signals whose moment falls in (start, until]; each once per occurrence.
    ``lots`` are the lots before this advance expired any, so a warning that falls before
    an expiry in the same advance is still given, at its own moment; ``made``, their
    digest if known, says when the first of them expires."""
    out: list[LifecycleEvent] = []
    today = until.astimezone(zone).date()
    for sig in model.signals:
        key: str | None = None
        moment: datetime | None = None
        detail = ""
        days = sig.days or 0
        if sig.on == "birthday_in" and member.birthday is not None:
            # every birthday whose warning moment has come, that had not passed before this
            # advance began: none missed in a long advance, none for a birthday already gone
            first_day = start.astimezone(zone).date()
            for year in range(first_day.year, today.year + 2):
                bday = birthday_in_year(member.birthday, year, model.policies.birthday.feb29)
                when = _local_midnight(bday - timedelta(days=days), zone)
                if when <= until and bday >= first_day and fired.get(sig.id, "") < str(year):
                    fired[sig.id] = str(year)
                    out.append(new(LifecycleEvent, at=max(when, start), type="signal",
                                   rule=sig.id, detail=f"birthday {bday.isoformat()}"))
        elif sig.on == "points_expiring":
            # only lots expiring after ``start`` whose warning may have come by ``until``:
            # a warning ``days`` days before by the local clock is within a change of UTC
            # offset of ``days`` × 24 hours before — under 48 hours, as Python holds every
            # offset under a day either way — so one expiring more than ``days`` + 2 days
            # after ``until`` cannot be due. (Reading every lot's warning took 3 µs a lot,
            # and a member may hold two years of lots.)
            try:
                latest: datetime | None = _like(until + timedelta(days=days + 2), lots,
                                                "expires_at")
            except OverflowError:
                latest = None
            expiring = []
            after = _like(start, lots, "expires_at")
            far = made is not None and (made.soonest is None or (
                latest is not None and made.soonest > latest))
            for lot in () if far else lots:  # (none expires soon enough: none is read)
                expires = lot.expires_at
                if expires is not None and after < expires and (
                        latest is None or expires <= latest):
                    expiring.append(lot)
            expiring.sort(key=_expires_at)
            # the points expiring at each moment, added up once (lots expiring together all
            # passed the test above, which reads only the moment): summing over every lot
            # for each warning made a long advance's warnings cost lots × lots
            at_once: dict[datetime, int] = {}
            for lot in expiring:
                expiry = _expires_at(lot)
                at_once[expiry] = at_once.get(expiry, 0) + lot.points
            for lot in expiring:
                assert lot.expires_at is not None
                when = _days_before(lot.expires_at, days, zone)
                if when <= until and start < lot.expires_at \
                        and fired.get(sig.id, "") < lot.expires_at.isoformat():
                    fired[sig.id] = lot.expires_at.isoformat()
                    soon = at_once[lot.expires_at]
                    out.append(new(LifecycleEvent,
                        at=max(when, start), type="signal", rule=sig.id,
                        detail=f"{soon} points expire at {lot.expires_at.isoformat()}"))
        elif sig.on == "no_purchase" and member.last_purchase is not None:
            when = _local_midnight(member.last_purchase + timedelta(days=days), zone)
            if when <= until:
                key, moment = member.last_purchase.isoformat(), when
                detail = f"no purchase since {member.last_purchase.isoformat()}"
        elif sig.on == "new_member_idle" and member.joined is not None and member.orders == 0:
            when = _local_midnight(member.joined + timedelta(days=days), zone)
            if when <= until:
                key, moment, detail = member.joined.isoformat(), when, f"joined {member.joined}"
        if key is not None and moment is not None and fired.get(sig.id) != key:
            fired[sig.id] = key
            out.append(new(LifecycleEvent, at=max(moment, start), type="signal", rule=sig.id,
                                      detail=detail))
    return out


def _expires_at(lot: PointsLot) -> datetime:
    assert lot.expires_at is not None
    return lot.expires_at


def _purchase_signals(model: ProgramModel, member: MemberState, at: datetime, today: date,
                      first: bool, fired: dict[str, str]) -> list[LifecycleEvent]:
    out: list[LifecycleEvent] = []
    for sig in model.signals:
        if sig.on == "first_purchase" and first and sig.id not in fired:
            fired[sig.id] = today.isoformat()
            out.append(new(LifecycleEvent, at=at, type="signal", rule=sig.id,
                                      detail="first purchase"))
        elif sig.on == "tier_gap":
            tiers = model.tiers
            rank = next(i for i, t in enumerate(tiers) if t.id == (member.tier or tiers[0].id))
            if rank + 1 >= len(tiers):
                continue
            nxt = tiers[rank + 1]
            q = nxt.qualify
            if q is None:
                continue
            gaps = []
            if sig.spend is not None and q.spend is not None:
                short = q.spend - window_spend(model, member, today)
                if _ZERO < short <= sig.spend:
                    gaps.append(f"{short:f} short of {nxt.id}")
            if sig.points is not None and q.points is not None:
                short_p = q.points - member.points
                if 0 < short_p <= sig.points:
                    gaps.append(f"{short_p} points short of {nxt.id}")
            key = f"{nxt.id}:{today.year}"
            if gaps and fired.get(sig.id) != key:
                fired[sig.id] = key
                out.append(new(LifecycleEvent, at=at, type="signal", rule=sig.id,
                                          detail="; ".join(gaps)))
    return out


# --- advance ----------------------------------------------------------------------------------


def advance_state(model: ProgramModel, member: MemberState, until: datetime, zone: tzinfo
                  ) -> tuple[MemberState, list[LifecycleEvent]]:
    """Move a member to ``until``: release, expire, review, signal — in time order."""
    if until.tzinfo is None:
        raise InputError("needs a UTC offset", field="until", kind="advance")
    if member.tier is not None and all(t.id != member.tier for t in model.tiers):
        raise InputError(f"unknown tier {member.tier!r}; the program has "
                         f"{[t.id for t in model.tiers]}", field="tier", kind="member")
    start = member.advanced_to
    if start is not None and until <= start:
        return member, []
    last_day = until.astimezone(zone).date()
    reviews = [] if start is None else _review_days(
        model, member, start.astimezone(zone).date(), last_day)  # the book keeps joined
    if not reviews and not model.signals:
        # nothing but the book moves (the usual case at a purchase): the state in one step,
        # the same values and set fields as the general way below
        state, events = _move(model, member, until, zone, version=member.version + 1,
                              signals=dict(member.signals),
                              spend_log=_prune_log(model, dict(member.spend_log), last_day))
        events.sort(key=lambda e: (e[0], e[1]))
        return state, [e for _, _, e in events]
    state, events = member, []
    fired = dict(member.signals)
    for day in reviews:
        # the book is brought to each review's moment first: a review judges the balance
        # of that day, not one that lots expiring later in the same advance have lowered
        at = _local_midnight(day, zone)
        state, moved = _move(model, state, at, zone, version=member.version)
        events += moved
        state, found = _review(model, state, day, at)
        events += [(at, 2, e) for e in found]
        for sig in model.signals:
            # 流失预警: the member fell at this review and the ones before it, `times` in a
            # row (once per such run: the count passes `times` only once)
            if sig.on == "tier_falls" and state.tier_falls == sig.times:
                fired[sig.id] = day.isoformat()
                events.append((at, 3, new(LifecycleEvent, at=at, type="signal", rule=sig.id,
                                          tier_to=state.tier,
                                          detail=f"moved down at {sig.times} review"
                                                 f"{'s' if sig.times != 1 else ''} in a "
                                                 "row")))
    state, moved = _move(model, state, until, zone, version=member.version)
    events += moved
    events += [(e.at, 3, e) for e in _signals(model, state, member.lots, start or until, until,
                                              zone, fired, _known(member))]
    events.sort(key=lambda e: (e[0], e[1]))
    reviewed = state
    state = state.model_copy(update={"signals": fired, "version": member.version + 1,
                                     "spend_log": _prune_log(model, dict(state.spend_log),
                                                             last_day)})
    _carry(reviewed, state)
    return state, [e for _, _, e in events]


def _move(model: ProgramModel, member: MemberState, until: datetime, zone: tzinfo,
          **updates: Any) -> tuple[MemberState, list[tuple[datetime, int, LifecycleEvent]]]:
    """The book alone brought to ``until``: lots released and expired (each event keyed by
    its moment and its order at that moment), and the purchases' expired points counted."""
    start = member.advanced_to
    if start is not None and until <= start:
        return member, []
    book = _Book(member, start or until)
    events: list[tuple[datetime, int, LifecycleEvent]] = []
    made = book.digest  # (asked which lots are pending and when the first expires)
    counted = made is not None and start is not None and made.usable(start) and \
        len(book.lots) == len(made.lots)  # (no opening lot added to those it counts)
    if start is not None:
        # (the bounds may be review midnights in the program's zone, the lots' times their
        # events' own offset: see _like)
        after, to = (_like(start, book.lots, "available_at"),
                     _like(until, book.lots, "available_at"))
        # (a lot the digest does not hold pending was usable at its moment, before ``after``)
        for lot in made.pending if counted and made is not None else book.lots:
            # (a lot that expires before it is usable is never released: ledger.pending_days
            # longer than its life, which lint reports)
            if after < lot.available_at <= to and (
                    lot.expires_at is None or lot.expires_at > lot.available_at):
                events.append((lot.available_at, 0, new(LifecycleEvent,
                    at=lot.available_at, type="points_released", rule=lot.rule,
                    points=lot.points, detail=f"lot {lot.id} usable")))
    none_due = counted and made is not None and (made.soonest is None or made.soonest > until)
    for lot, when in [] if none_due else book.expire(until):
        events.append((when, 1, new(LifecycleEvent, at=when, type="points_expired", rule=lot.rule,
                                                points=-lot.points,
                                                detail=f"lot {lot.id} expired")))
    months = model.ledger.expiry.inactive_months
    if months is not None and member.last_purchase is not None:
        when = _local_midnight(_months_later(member.last_purchase, months), zone)
        if when <= until and (start is None or when > start):
            gone = book.expire_all()
            if gone:
                events.append((when, 1, new(LifecycleEvent,
                    at=when, type="points_expired", rule="inactivity", points=-gone,
                    detail=f"no purchase for {months} months")))
    book.now = until
    purchases = _expired_counted(book, member.purchases)
    state = book.state(member, advanced_to=until, purchases=purchases, **updates)
    if made is not None and book.added is not None and not book.added and \
            purchases is made.purchases:
        # the lots as they were, some released: the digest with what is still pending
        _keep(state, made._replace(lots=state.__dict__["lots"], as_of=until,
                                   pending=tuple(book.waiting)))
    return state, events


def _expired_counted(book: _Book, purchases: tuple[PurchaseRecord, ...]
                     ) -> tuple[PurchaseRecord, ...]:
    """The purchase records with the points of their lots that ``book`` expired counted."""
    by_source = book.expired_by_source
    if not by_source:
        return purchases
    return tuple(p.model_copy(update={"points_expired": p.points_expired + by_source[p.id]})
                 if p.id in by_source else p for p in purchases)


def is_late(member: MemberState, at: datetime) -> bool:
    """An event dated before the state's own instant (``advanced_to``: the host passed a
    later event first)."""
    return member.advanced_to is not None and at < member.advanced_to


def _lapse_after(at: datetime, purchases: tuple[PurchaseRecord, ...], last_purchase: date,
                 months: int, zone: tzinfo, purchase: bool) -> datetime | None:
    """The first inactivity lapse after ``at``: ``months`` after a purchase day with no
    purchase before it, found from the purchase days on file (the records kept for
    ``refund_days``, the last purchase, and the event's own day if it is a purchase). Before
    the oldest record on file the days are not known, and no lapse is found there."""
    event_day = at.astimezone(zone).date()
    days = sorted({p.at.astimezone(zone).date() for p in purchases} | {last_purchase}
                  | ({event_day} if purchase else set()))
    before = [d for d in days if d <= event_day]
    # (from the last purchase on or before the event; none on file: from the first after)
    day = before[-1] if before else days[0]
    for later in [*days[days.index(day) + 1:], None]:
        lapse = _months_later(day, months)
        if later is None or later >= lapse:  # (a purchase on the day comes after midnight)
            when = _local_midnight(lapse, zone)
            if when > at:  # (a lapse at or before the event passed before its lot)
                return when
        if later is not None:
            day = later
    return None


def expire_late(model: ProgramModel, book: _Book, at: datetime, member: MemberState,
                last_purchase: date | None, zone: tzinfo, purchase: bool = False
                ) -> list[LifecycleEvent]:
    """The points an event dated before the state's own instant added (or gave back) that
    expired between the two, expired now: the state already stands at that instant, and
    never holds points past their expiry (nor lets them pay). ``last_purchase`` is the
    member's after the event; ``purchase`` says the event is one."""
    until = member.advanced_to
    assert until is not None
    # its points that became usable between the two, as advance() would have said had the
    # event come first (first: a lot may be released and then expire)
    held = {lot.id for lot in member.lots}
    events = [new(LifecycleEvent, at=lot.available_at, type="points_released", rule=lot.rule,
                  points=lot.points, detail=f"lot {lot.id} usable")
              for lot in book.lots if lot.id not in held and at < lot.available_at <= until
              and (lot.expires_at is None or lot.expires_at > lot.available_at)]
    events += [new(LifecycleEvent, at=when, type="points_expired", rule=lot.rule,
                   points=-lot.points, detail=f"lot {lot.id} expired")
               for lot, when in book.expire(until)]
    months = model.ledger.expiry.inactive_months
    if months is not None and last_purchase is not None:
        when = _lapse_after(at, member.purchases, last_purchase, months, zone, purchase)
        if when is not None and when <= until:
            gone = book.expire_earned_before(when)
            if gone:
                events.append(new(LifecycleEvent, at=when, type="points_expired",
                                  rule="inactivity", points=-gone,
                                  detail=f"no purchase for {months} months"))
    events.sort(key=lambda e: e.at)
    return events


def _late_updates(model: ProgramModel, book: _Book, at: datetime, member: MemberState,
                  zone: tzinfo, events: list[LifecycleEvent]) -> dict[str, Any]:
    """:func:`expire_late` for an event other than a purchase, if it is late: its events
    added to ``events``; the state's updates returned (the purchase records' expired
    points)."""
    if not is_late(member, at):
        return {}
    events += expire_late(model, book, at, member, member.last_purchase, zone)
    return {"purchases": _expired_counted(book, member.purchases)}


def _program_parts(program: Any) -> tuple[ProgramModel, tzinfo]:
    model = getattr(program, "model", None)
    if not isinstance(model, ProgramModel):  # (a path, a dict, None: a call made wrong)
        raise TypeError(f"expected a Program (from lr.load_program), got "
                        f"{type(program).__name__}")
    zone: tzinfo = program.zone
    return model, zone


def _ref(program: Any) -> Any:
    _program_parts(program)
    return program.ref


@exact
def advance(program: Any, member: MemberState | dict[str, Any], until: datetime | str
            ) -> LifecycleDecision:
    """Move a member through time to ``until`` (an aware instant): pending points become
    usable, lots expire, scheduled tier reviews run, signals fire — reported in time order.
    Advancing again to the same instant changes nothing."""
    from ._member import coerce

    m = coerce(MemberState, member, "member")
    at = _instant(until, "until", "advance")
    model, zone = _program_parts(program)
    m = in_unit_state(m, program.quantum, program.currency)
    state, events = advance_state(model, m, at, zone)
    counts_held(state, "advance")
    return build(LifecycleDecision, {
        "program": _ref(program), "kind": "advance", "member_id": m.id, "event_id": None,
        "at": at, "points_change": (state.points + state.pending_points)
        - (m.points + m.pending_points), "events": tuple(events), "refund": None,
        "reward": None, "replayed": not events and state.advanced_to == m.advanced_to,
        "member_version": m.version, "trace": None, "member_after": state})


def _instant(value: datetime | str, field: str, kind: str) -> datetime:
    # (read as a transaction's `at` is: the same forms accepted, the same refused)
    return parse_instant(value, field, kind)


# --- purchases ----------------------------------------------------------------------------


def redemption_value(model: ProgramModel, member: MemberState, txn: Transaction,
                     goods_paid: Decimal, quantum: Decimal) -> tuple[Decimal, int]:
    """(money paid with points, points redeemed) for a purchase; 积分抵现 rules applied.

    Points are only taken for money they pay: what they pay is rounded down to the
    currency's unit, the points redeemed are the fewest whole steps paying it, and
    ``max_share`` is judged on it."""
    asked = txn.redeem_points
    if not asked:
        return txn.paid_with_points, 0
    r = model.redemption
    if r is None:
        raise InputError("this program has no redemption (积分抵现) rule", field="redeem_points",
                         kind="transaction")
    if txn.paid_with_points:
        raise InputError("give redeem_points or paid_with_points, not both",
                         field="redeem_points", kind="transaction")
    clamp = r.over_ask == "clamp"
    rate = Redeeming(r.points, r.value, r.step, quantum)
    problems = []
    points = asked
    if points % r.step:
        problems.append(f"{points} is not a whole number of {r.step}-point steps")
        points -= points % r.step
    available = member.points
    if points > available:
        problems.append(f"{points} points asked, {max(available, 0)} available")
        points = max(0, available - available % r.step)
    cap_units = int((goods_paid * r.max_share) // quantum)  # (the money points may pay)
    if rate.units(points) > cap_units:
        cap_points = rate.points_for(rate.units(rate.most_within(cap_units)))
        problems.append(f"{points} points would pay more than {r.max_share * 100:f}% of "
                        f"{goods_paid:f} (at most {cap_points} points)")
        points = cap_points
    needed = rate.points_for(rate.units(points))
    if needed < points:
        if not problems:  # (a request refused already is not judged on a number it did not ask)
            problems.append(rate.pays_nothing(points, needed, model.program.currency))
        points = needed
    if points < r.minimum:
        problems.append(f"at least {r.minimum} points per redemption")
        points = 0
    if problems and not clamp:
        raise InputError("; ".join(problems), field="redeem_points", kind="transaction")
    return rate.units(points) * quantum, points


class Redeeming(NamedTuple):
    """A redemption's rate (``points`` points pay ``value``) in whole steps, paid in whole
    units of the currency (``quantum``): what points pay, and the points money needs."""

    points: Decimal
    value: Decimal
    step: int
    quantum: Decimal

    def _per_unit(self) -> Fraction:  # points per unit of the currency (exact)
        return Fraction(self.points) * Fraction(self.quantum) / Fraction(self.value)

    def units(self, points: int) -> int:
        """The whole units of the currency ``points`` pay (rounded down)."""
        return math.floor(points / self._per_unit())

    def points_for(self, units: int) -> int:
        """The fewest points, in whole steps, that pay ``units`` units."""
        steps = math.ceil(units * self._per_unit() / self.step)
        return int(steps) * self.step

    def most_within(self, units: int) -> int:
        """The most points, in whole steps, that pay no more than ``units`` units."""
        most = math.ceil((units + 1) * self._per_unit()) - 1
        return max(most - most % self.step, 0)

    def pays_nothing(self, points: int, needed: int, currency: str) -> str:
        """Why a request with points to spare is refused."""
        unit = f"{self.quantum:f} {currency}"
        if not needed:
            return (f"{points} points are worth less than {unit} and would pay nothing "
                    f"({self.points:f} points pay {self.value:f} {currency}: ask at least "
                    f"{self.points_for(1)})")
        return (f"{points} points pay {self.units(points) * self.quantum:f} {currency}, as "
                f"{needed} do: the other {points - needed} are worth less than {unit} and "
                f"would pay nothing (ask {needed})")


def complete_purchase(program: Any, plan: Any, member: MemberState, txn: Transaction,
                      decision: Decision, events: list[LifecycleEvent], base_version: int
                      ) -> Decision:
    """Add what a purchase does to the member's account: lots, redemption, the record kept
    for refunds, spend by month, tier dates, signals, referral — and the next state.

    Everything that can fail or that the decision reports (points, events, the host's
    actions) is worked out here; the next state itself is built when first read (see
    :class:`Decision`), unless the purchase redeems points or the program has signals, whose
    results depend on it."""
    model = plan.model
    lp = plan.ledger
    values = decision.__dict__  # read as a dict: this runs on every purchase
    at = txn.at
    today = values["local_date"]
    points_lines = values["points"]
    outbox: tuple[HostAction, ...] = ()
    ref = model.referral
    if ref is not None and member.orders == 0 and member.referred_by:
        if ref.referee_points:
            points_lines = (*points_lines, build(PointsLine, {
                "rule": "referral", "kind": "bonus", "points": ref.referee_points,
                "basis": _ZERO, "multiplier": Decimal(1),
                "detail": f"referred by {member.referred_by}"
                if values["trace"] is not None else ""}))  # (the trace off: no detail)
        if ref.referrer_points:
            outbox = (build(HostAction, {
                "id": f"referral:{member.id}", "member_id": member.referred_by,
                "points": ref.referrer_points, "rule": "referral",
                "reason": f"{member.id} made a first purchase"}),)
    points_total = 0
    for line in points_lines:
        points_total += line.points
    # every date computed up front: a date out of range fails the evaluation, not the read
    available_at = at + lp.pending if lp.pending else at
    expiry = expires_at(model.ledger.expiry, at, program.zone) if lp.expires else None
    horizon = at - lp.refund
    oldest = _log_oldest(model, today) if lp.keeps_log else None
    changed = values["tier_changed"]
    redeemed = values["redeemed_points"]
    own = purchase_events(events, at, redeemed, values["paid_with_points"], points_total,
                          available_at, bool(lp.pending), changed, values["tier_before"],
                          values["tier_after"])

    # what the next state needs, read now (not the decision itself: it holds the pending
    # state, and a cycle would wait for the garbage collector)
    # (the member's dicts are copied: a host may change them before the state is read)
    parts = (member, dict(member.usage), dict(member.spend_log), txn,
             model.ledger.remember_events, available_at, expiry, horizon, oldest,
             _kept_until(model, today) if changed else None, today, points_lines,
             points_total, redeemed, values["usage"], values["qualifying_spend"],
             values["line_paid"], values["goods_paid"], values["paid_with_points"],
             values["tier_after"], changed, plan, values["rules_fired"])

    # the decision was made for this call alone and nobody else holds it yet: it is
    # completed in place rather than copied
    values["points"] = points_lines
    values["points_total"] = points_total
    values["outbox"] = outbox
    values["member_version"] = base_version
    late = lp.dated and is_late(member, at)
    if redeemed or model.signals or late:
        # a redemption can fail on the lots; signals are events computed from the state; a
        # late purchase's points may have become usable, or expired, already, which its
        # events say
        expired: list[LifecycleEvent] = []
        state = _purchase_state(*parts, (model, program.zone, expired) if late else None)
        if model.signals:
            fired = dict(state.signals)
            own = (*own, *_purchase_signals(model, state, at, today, member.orders == 0,
                                            fired))
            signalled = state.model_copy(update={"signals": fired})
            _carry(state, signalled)
            state = signalled
        own = (*own, *expired)  # (after the purchase's moment)
        values["events"] = own
        values["member_after"] = state
        return decision
    values["events"] = own
    del values["member_after"]
    return pending(decision, _purchase_state, parts)


USABLE_NOW = "usable now"  # the detail of points earned usable at once (generated code too)


def purchase_events(events: list[LifecycleEvent], at: datetime, redeemed: int,
                    paid_with_points: Decimal, points_total: int, available_at: datetime,
                    pending: bool, changed: bool, tier_before: str, tier_after: str
                    ) -> tuple[LifecycleEvent, ...]:
    """``events`` (of bringing the account up to the purchase) and the purchase's own: points
    redeemed, points earned, an upgrade. Shared by this module and the generated purchase."""
    earned = build(LifecycleEvent, {
        "at": at, "type": "points_earned", "rule": None, "points": points_total,
        "tier_from": None, "tier_to": None,
        "detail": f"usable from {available_at.isoformat()}" if pending else USABLE_NOW,
    }) if points_total else None
    if not (events or redeemed or changed):  # most purchases: points earned, nothing else
        return () if earned is None else (earned,)
    out = list(events)
    if redeemed:
        out.append(new(LifecycleEvent, at=at, type="points_redeemed", rule="redemption",
                       points=-redeemed, detail=f"paid {paid_with_points:f}"))
    if earned is not None:
        out.append(earned)
    if changed:
        out.append(build(LifecycleEvent, {
            "at": at, "type": "tier_upgraded", "rule": None, "points": 0,
            "tier_from": tier_before, "tier_to": tier_after, "detail": "qualified"}))
    return tuple(out)


def _purchase_state(
        member: MemberState, usage: dict[str, Usage], spend_log: dict[str, Decimal],
        txn: Transaction, remember: int, available_at: datetime,
        expiry: datetime | None, horizon: datetime, oldest: str | None,
        kept_until: date | None, today: date, points_lines: tuple[PointsLine, ...],
        points_total: int, redeemed: int, used_rules: tuple[UsageConsumed, ...],
        spend: Decimal, line_paid: tuple[Decimal, ...], goods_paid: Decimal,
        paid_with_points: Decimal, tier_after: str, tier_changed: bool, plan: Any,
        fired: Container[str],
        late: tuple[ProgramModel, tzinfo, list[LifecycleEvent]] | None = None) -> MemberState:
    """The member's state after a purchase (see :func:`complete_purchase`). Runs in the
    library's Decimal context: evaluation calls it there, and a pending next state is built
    there when read (``Decision._settle``), maybe much later in the host's own context.
    For a late purchase (:func:`is_late`) of a program whose points expire, ``late`` is
    given: the events of :func:`expire_late` are added to its list."""
    # (fields read from the models' __dict__: a pydantic model's attribute read costs several
    # dict reads, and this runs for every purchase a host applies)
    t_fields, fields = txn.__dict__, member.__dict__
    at, txn_id = t_fields["at"], t_fields["id"]
    book = _Book(member, at)
    redeemed_from: tuple[RedeemedPart, ...] = ()
    if redeemed:
        taken: list[Taken] = []
        book.redeem(redeemed, taken_from=taken)
        redeemed_from = taken_parts(taken, pending=False)
    for line in points_lines:
        earned = line.__dict__
        points = earned["points"]
        if points > 0:
            rule = earned["rule"]
            book.earn(points, f"{txn_id}:{rule}", txn_id, rule, at, available_at, expiry)
    last_purchase = max(today, fields["last_purchase"] or today)
    if late is not None:
        model, zone, expired = late
        expired += expire_late(model, book, at, member, last_purchase, zone, True)
    usage = dict(usage)  # a state of its own, whoever reads it first
    for used in used_rules:
        _count_use(usage, used.rule, used.period, 1)
    per = plan.fast.period_per
    if per and points_total:  # (policies.points.max_per_period counts the period's points)
        _count_use(usage, PERIOD_POINTS, period_key(today, per), points_total)
    if oldest is None:
        log: dict[str, Decimal] = {}
    else:
        month = _month(today)
        log = {m: v for m, v in spend_log.items() if m >= oldest}
        log[month] = log.get(month, _ZERO) + spend
    book.consolidate(horizon)
    # nothing refunded yet, written in the currency's unit as every other amount of the
    # record is ("0.00", as paid_with_points is quantized to it), not as a bare "0"
    zero = paid_with_points if not paid_with_points else _ZERO.quantize(paid_with_points)
    line_points, line_spend = attribute_to_lines(plan, txn, line_paid, paid_with_points,
                                                 points_lines, spend, fired)
    # every field, in the model's order: a copy of the template, its values set (a dict
    # display of 21 pairs compiles on Python 3.11 to one of 16 and a second merged into it)
    values = _NEW_RECORD.copy()
    values["id"] = txn_id
    values["at"] = at
    values["line_paid"] = line_paid
    values["goods_paid"] = goods_paid
    values["qualifying_spend"] = spend
    values["points"] = points_total
    values["redeemed_points"] = redeemed
    values["paid_with_points"] = paid_with_points
    values["refunded"] = values["spend_reversed"] = zero
    values["line_points"] = line_points
    values["line_spend"] = line_spend
    values["redeemed_from"] = redeemed_from
    record = _MAKE_RECORD(values)
    made = book.digest  # (records: the digest's columns say which leave the window)
    dropped = False
    if made is None:
        purchases = (*[p for p in fields["purchases"] if p.at >= horizon], record) \
            if fields["purchases"] else (record,)
    elif made.oldest is None or made.oldest >= horizon:
        purchases = (*fields["purchases"], record)
    else:
        kept: list[PurchaseRecord] = []
        ids: list[str] = []
        ats: list[datetime] = []
        for p, p_id, p_at in zip(fields["purchases"], made.record_ids, made.record_ats,
                                 strict=True):  # (one pass over the columns)
            if p_at >= horizon:
                kept.append(p)
                ids.append(p_id)
                ats.append(p_at)
        purchases = (*kept, record)
        made = made._replace(record_ids=tuple(ids), record_ats=tuple(ats))
        dropped = True
    updates: dict[str, Any] = {
        "tier": tier_after,
        "qualifying_spend": fields["qualifying_spend"] + spend,
        "orders": fields["orders"] + 1,
        "last_purchase": last_purchase,
        "usage": usage,
        "recent_transactions": (*fields["recent_transactions"], txn_id)[-remember:],
        "purchases": purchases,
        "spend_log": log,
        "advanced_to": max(at, fields["advanced_to"] or at),
    }
    if tier_changed:
        updates["tier_since"] = today
        updates["tier_kept_until"] = kept_until
        if fields["tier_falls"]:  # (moving up ends a run of falls, as a review's upgrade does)
            updates["tier_falls"] = 0
    if book.expired_by_source:  # (a late purchase's points expired at once)
        updates["purchases"] = _expired_counted(book, updates["purchases"])
    state = book.state_with(member, updates)
    if made is not None and book.added is not None and \
            (after := state.__dict__)["purchases"] is purchases:
        # the book only added lots to those it counted, and its records are these: the next
        # state's digest from this one's columns, not from its history
        _keep_grown(state, after["lots"], book, made, dropped, record)
    return state


# a new purchase's record before its own values (see _purchase_state): every field, in the
# model's order; those it sets are None here
_NEW_RECORD: dict[str, Any] = shared_keys(PurchaseRecord, {
    "id": None, "at": None, "line_paid": None, "goods_paid": None, "qualifying_spend": None,
    "points": None, "redeemed_points": None, "paid_with_points": None, "refunded": None,
    "refunded_lines": (), "points_reversed": 0, "points_returned": 0, "points_expired": 0,
    "expiry_absorbed": 0, "spend_reversed": None, "line_points": None, "line_spend": None,
    "redeemed_from": None, "reversed_from": (), "points_unpaid": 0})


def _keep_grown(state: MemberState, lots: tuple[PointsLot, ...], book: _Book,
                records: Digest, dropped: bool, record: PurchaseRecord) -> None:
    """Keep the digest of a purchase's next ``state``: the book's lots (as its digest counts
    them, with those it added), and ``records``' columns (those still in the window: some
    were ``dropped``) with the purchase's ``record``."""
    counted = book.digest
    assert counted is not None and book.added is not None
    folded = _lot_facts(book.added, counted.tracked, counted.soonest, None)
    if folded is None:
        return
    tracked, soonest, added, _, _ = folded
    earliest, second = counted.earliest, counted.second
    for at in added:
        if earliest is None or at < earliest:
            earliest, second = at, earliest
        elif second is None or at < second:
            second = at
    txn_id, at = record.id, record.at
    record_ids = (*records.record_ids, txn_id)
    record_ats = (*records.record_ats, at)
    if dropped:
        oldest = min(record_ats)
    else:
        oldest = at if records.oldest is None or at < records.oldest else records.oldest
    ids, ids_added = records.ids, (*records.ids_added, txn_id)
    if len(ids_added) > _IDS_ADDED:  # (now and then: the dropped ones leave the set)
        ids, ids_added = frozenset(record_ids), ()
    _keep(state, Digest(lots, tracked, book.now, tuple(book.waiting), soonest,
                        (*counted.earned, *added), earliest, second,
                        state.__dict__["purchases"], ids, ids_added, record_ids, record_ats,
                        oldest))


_IDS_ADDED = 64


def on_file(made: Digest, txn_id: str) -> bool:
    """A record of purchase ``txn_id`` is in the digest's history."""
    return (txn_id in made.ids or txn_id in made.ids_added) and txn_id in made.record_ids


# points taken from a lot: its expiry, its source, when it is usable, and how many
Taken = tuple[datetime | None, str, datetime, int]


def taken_parts(taken: list[Taken], *, pending: bool) -> tuple[RedeemedPart, ...]:
    """The points taken from lots, by expiry and source, in the order taken (lots alike
    merged); with ``pending``, by when they are usable too (a refund can take pending points
    in place of points spent, a redemption never does)."""
    merged: dict[tuple[datetime | None, str, datetime | None], int] = {}
    for expires, source, available, points in taken:
        key = (expires, source, available if pending else None)
        merged[key] = merged.get(key, 0) + points
    return tuple(build(RedeemedPart, {"expires_at": expires, "points": points,
                                      "source": source, "available_at": available})
                 for (expires, source, available), points in merged.items())


def _returned_parts(record: PurchaseRecord, points: int, fresh: datetime | None
                    ) -> list[tuple[datetime | None, str | None, int]]:
    """The ``points`` a refund gives back of what ``record`` redeemed, with the expiry and
    source they had: the last used first (the latest expiry), after those earlier refunds
    gave back. A record without its parts (an earlier version's) gives them a ``fresh``
    expiry."""
    if not record.redeemed_from:
        return [(fresh, None, points)]
    skip, out = record.points_returned, []
    for part in reversed(record.redeemed_from):
        have = part.points - min(skip, part.points)
        skip -= part.points - have
        take = min(have, points)
        if take:
            out.append((part.expires_at, part.source, take))
            points -= take
    return out


def _replace_taken(purchases: tuple[PurchaseRecord, ...], changed: dict[str, PurchaseRecord],
                   source: str, parts: tuple[RedeemedPart, ...], unpaid: int
                   ) -> tuple[tuple[RedeemedPart, ...], int]:
    """What a refund of ``source`` took in place of its own points: first in place of those
    of its lots an earlier refund had taken (that refund's record now holds these instead,
    to give back if need be), the rest its own (returned). What it could not take (``unpaid``:
    its shortfall or debt) is dropped from those records too: those points are gone, and the
    points that come back to make it good are not given back a second time. What is dropped
    so is owed by the earlier refund (its ``points_unpaid``), not by this one: its purchase's
    points were spent, and it is their coming back that makes it good, as in the other
    order. Returns the parts left (this refund's own) and how much of ``unpaid`` moved so.
    Updates ``changed``."""
    left = parts
    moved = 0
    for p in purchases:
        if not (left or unpaid):
            break
        record = changed.get(p.id, p)
        if not record.reversed_from or record.id == source or not any(
                q.source == source for q in record.reversed_from):
            continue
        kept: list[RedeemedPart] = []
        dropped = 0
        for q in record.reversed_from:
            if q.source != source:
                kept.append(q)
                continue
            given, left = _take_parts(left, q.points, last_first=False)
            kept += given
            owed = q.points - sum(part.points for part in given)
            gone = min(owed, unpaid)
            unpaid -= gone
            owed -= gone
            dropped += gone
            if owed:
                kept.append(q.model_copy(update={"points": owed}))
        moved += dropped
        changed[record.id] = record.model_copy(update={
            "reversed_from": tuple(kept), "points_unpaid": record.points_unpaid + dropped})
    return left, moved


def _owed_elsewhere(purchases: tuple[PurchaseRecord, ...], changed: dict[str, PurchaseRecord],
                    part: RedeemedPart) -> None:
    """Points given back (``part``) made good a debt or shortfall refunds owe
    (``points_unpaid``): those refunds, in the order their records are kept, owe that much
    less and hold the points instead, as if they had taken them. Updates ``changed``."""
    points = part.points
    for p in purchases:
        if points <= 0:
            return
        record = changed.get(p.id, p)
        n = min(record.points_unpaid, points)
        if n <= 0:
            continue
        points -= n
        changed[record.id] = record.model_copy(update={
            "points_unpaid": record.points_unpaid - n,
            "reversed_from": (*record.reversed_from, part.model_copy(update={"points": n}))})


def _settle_taken(book: _Book, records: dict[str, PurchaseRecord], fresh: str, at: datetime,
                  before: tuple[PointsLot, ...]) -> dict[str, PurchaseRecord]:
    """Points a refund gave back at ``at`` (its lots: ids made from its key ``fresh``, not
    among the lots ``before`` it, as another refund's id may extend this one's) change
    places with points refunds hold in place of spent ones (``reversed_from``) that would
    have been taken after them (a later expiry, or as late but usable later): refunds then
    always hold the points a refund takes first, whichever refund gave which back, and undo
    the same in any order. Returns the records changed (``records`` is updated too)."""
    if not records:
        return {}
    now = book.now
    far = datetime.max.replace(tzinfo=now.tzinfo)
    mine = f"{fresh}:"
    old = {lot.id for lot in before if lot.id.startswith(mine)}

    def rank(expires: datetime | None, available: datetime | None
             ) -> tuple[datetime, datetime]:
        return expires or far, max(available or now, now)

    out: dict[str, PurchaseRecord] = {}
    swaps = 0
    while True:
        back = [lot for lot in book.lots
                if lot.id.startswith(mine) and lot.id not in old]
        if not back:
            return out
        held = [(rank(q.expires_at, q.available_at), k, rid)
                for rid, rec in records.items() for k, q in enumerate(rec.reversed_from)]
        if not held:
            return out
        best = min(back, key=lambda lot: rank(lot.expires_at, lot.available_at))
        worst, k, rid = max(held)
        if rank(best.expires_at, best.available_at) >= worst:
            return out
        parts = list(records[rid].reversed_from)
        part = parts.pop(k)
        n = min(best.points, part.points)
        if part.points > n:
            parts.insert(k, part.model_copy(update={"points": part.points - n}))
        parts.append(build(RedeemedPart, {"expires_at": best.expires_at, "points": n,
                                          "source": best.source,
                                          "available_at": best.available_at}))
        records[rid] = out[rid] = records[rid].model_copy(update={"reversed_from": tuple(parts)})
        book.lots = [lot.model_copy(update={"points": lot.points - n}) if lot is best else lot
                     for lot in book.lots if lot is not best or lot.points > n]
        swaps += 1
        book.lots.append(new(PointsLot, id=f"{fresh}:was:held:{swaps}", points=n, earned=n,
                             earned_at=at, available_at=max(part.available_at or at, at),
                             expires_at=part.expires_at, source=part.source or fresh,
                             rule="refund-return"))


def _take_parts(parts: tuple[RedeemedPart, ...], points: int, *, last_first: bool = True
                ) -> tuple[list[RedeemedPart], tuple[RedeemedPart, ...]]:
    """Up to ``points`` of ``parts`` (the last taken first, or the first), and what is left
    of them, in their order."""
    out: list[RedeemedPart] = []
    left = list(parts) if last_first else list(reversed(parts))
    while points and left:
        part = left.pop()
        take = min(part.points, points)
        points -= take
        out.append(part.model_copy(update={"points": take}))
        if take < part.points:
            left.append(part.model_copy(update={"points": part.points - take}))
    return out, tuple(left if last_first else reversed(left))


def attribute_to_lines(plan: Plan, txn: Transaction, line_paid: tuple[Decimal, ...],
                       paid_with_points: Decimal, points_lines: Iterable[PointsLine],
                       spend: Decimal, fired: Container[str]
                       ) -> tuple[tuple[int, ...], tuple[Decimal, ...]]:
    """What each line earned and counted towards the tier, so a refund of a line takes back
    what that line brought and no more: a line of an excluded category earned nothing, a
    line a multiplier weighted earned more. Each earn rule's points are split over the
    lines in proportion to what each added to its basis (largest remainder); shipping and
    tax in a basis, and bonus points, belong to the whole purchase and are left out (a
    refund takes them back by money share).

    Both tuples are empty when every line brought its money share anyway (one line, or
    lines that all earn and count alike), and the spend tuple alone when the lines count
    alike but earn differently: a refund then takes back by money share what has no tuple —
    the same numbers, without the work on every purchase."""
    # (fields read from the models' __dict__, once each: a pydantic model's attribute read
    # costs several dict reads, and this runs for every purchase of several lines)
    t_fields = txn.__dict__
    items = t_fields["items"]
    n = len(items)
    if n == 1:
        return (), ()
    shares = plan.shares
    on: tuple[int, ...] = ()  # the scoped multipliers that fired, by index
    for k, scoped_id in enumerate(shares.scoped_ids):
        if scoped_id in fired:
            on += (k,)
    lines = []
    categories_of = []
    for item in items:  # (a loop, not a comprehension: on Python 3.11 each is a call)
        line = item.__dict__
        lines.append(line)
        categories_of.append(line["category"])
    if not on and shares.alike:
        excluded = shares.excluded
        if not excluded:
            return (), ()
        for category in categories_of:
            if category in excluded:
                break
        else:
            return (), ()
    q = plan.fast.quantum
    paid_share: list[Decimal] | None = None  # what points paid of each line, shipping, tax
    if paid_with_points:
        paid_share = _fast_functions().points_paid_parts(
            paid_with_points, list(line_paid), t_fields["shipping"], t_fields["tax"], q)
    share = None if plan.points_paid_earns else paid_share  # (the part that earns nothing)
    # in whole units, so the split is integer arithmetic: amounts in minor units, each
    # line's weight (a multiplier such as 1.5) as a fraction over one common denominator
    common = 1
    if on:
        by_sku = shares.by_sku
        # (a basket's key holds its lines: kept for small baskets only, so the cache stays
        # small whatever the baskets; a large one reads its lines' weights one by one)
        basket = None if by_sku or n > _BASKET_LINES else (on, *categories_of)
        found = None if basket is None else shares.baskets.get(basket)
        if found is not None:
            weight, common = found
        else:
            weights = shares.weights
            ratios = []
            weight = []
            for k in range(n):
                key = (on, categories_of[k], lines[k]["sku"] if by_sku else None)
                ratio = weights.get(key)
                if ratio is None:
                    if len(weights) >= _WEIGHTS_KEPT:  # (skus are many: keep it bounded)
                        weights.clear()
                    ratio = weights[key] = _line_ratio(shares, on, items[k])
                ratios.append(ratio)
                num, den = ratio
                weight.append(num)
                if den != 1:
                    common = math.lcm(common, den)
            if common != 1:  # (a weight such as 1.5: every line over the common denominator)
                weight = [num * (common // den) for num, den in ratios]
            if basket is not None:
                if len(shares.baskets) >= _WEIGHTS_KEPT:  # (bounded, as the weights)
                    shares.baskets.clear()
                shares.baskets[basket] = (weight, common)  # (read, never changed)
    else:
        weight = [1] * n
    listed: list[Decimal] | None = None  # the lines' own amounts, when a basis is the list
    scale, earn = shares.scale, shares.earn
    by_line: list[int] | None = None
    for pl in points_lines:
        p_fields = pl.__dict__
        points = p_fields["points"]
        if p_fields["kind"] != "earn" or not points:
            continue
        ep = earn.get(p_fields["rule"])
        if ep is None:
            continue
        on_paid = ep.paid
        basis: Sequence[Decimal]
        if not on_paid:
            if listed is None:
                listed = [line["amount"] for line in lines]
            basis = listed
        elif share:
            basis = [line_paid[k] - share[k] for k in range(n)]
        else:
            basis = line_paid
        categories, exclude = ep.categories, ep.exclude
        units = []
        if categories or exclude:
            for k in range(n):
                category = categories_of[k]
                if (categories and category not in categories) or category in exclude:
                    units.append(0)
                else:
                    units.append((basis[k] * scale).__trunc__() * weight[k])
        else:  # (the usual rule: every line earns; __trunc__() is int(), without its call)
            for k in range(n):
                units.append((basis[k] * scale).__trunc__() * weight[k])
        whole = _ZERO  # the purchase's own part of the basis
        if ep.include_shipping:
            whole += t_fields["shipping"] - (share[-2] if share and on_paid else _ZERO)
        if ep.include_tax:
            whole += t_fields["tax"] - (share[-1] if share and on_paid else _ZERO)
        units.append((whole * scale).__trunc__() * common if whole else 0)
        parts = split_points(points, units)
        if by_line is None:
            by_line = parts[:n]
        else:
            for k in range(n):
                by_line[k] += parts[k]
    earned = tuple(by_line) if by_line is not None else (0,) * n
    # what each line counted: as the spend was worked out (spend_after_points), the points
    # payment's part on each line, shipping and tax taken off where it counts; none kept
    # when the lines count alike (what they paid, none left out): their money share
    excluded = plan.excluded_from_spend
    spend_paid = shares.spend_paid
    if spend_paid and not paid_share:
        for category in categories_of:
            if category in excluded:
                break
        else:
            return earned, ()
    whole = _ZERO
    if shares.spend_shipping:
        whole += t_fields["shipping"] - (paid_share[-2] if paid_share else _ZERO)
    if shares.spend_tax:
        whole += t_fields["tax"] - (paid_share[-1] if paid_share else _ZERO)
    counted = []
    total = whole
    lowest = _ZERO
    for k in range(n):
        if excluded and categories_of[k] in excluded:
            counted.append(_ZERO)
            continue
        amount = line_paid[k] if spend_paid else lines[k]["amount"]
        if paid_share:
            amount -= paid_share[k]
        counted.append(amount)
        total += amount
        if amount < lowest:
            lowest = amount
    if total == spend and lowest >= 0:
        spend_by_line = []
        for c in counted:
            spend_by_line.append(c if c.same_quantum(q) else c.quantize(q))
    else:  # (a spend held at 0, or a list basis under what points paid: spread what counted)
        spend_by_line = allocate(spend, [*(max(c, _ZERO) for c in counted), max(whole, _ZERO)],
                                 q)[:n] if spend else [spend] * n
    return earned, tuple(spend_by_line)


_WEIGHTS_KEPT = 4096  # line weights cached per program (see LineShares.weights)
_BASKET_LINES = 16  # the most lines a basket whose weights are kept has (LineShares.baskets)


def _line_ratio(shares: LineShares, on: tuple[int, ...], item: LineItem) -> tuple[int, int]:
    """A line's weight, the scoped multipliers ``on`` that apply to it combined, as a
    fraction (1.5 is 3/2)."""
    factors = []
    for k in on:
        mp = shares.scoped[k]
        if (not mp.categories or item.category in mp.categories) and (
                not mp.skus or item.sku in mp.skus):
            factors.append(mp.rule.factor)
    weight = _fast_functions().combine(factors, shares.how)
    return (1, 1) if weight == _ONE else weight.as_integer_ratio()


_FAST: Any = None


def _fast_functions() -> Any:
    """._fast, which imports this module: imported once, when first needed."""
    global _FAST
    if _FAST is None:
        from . import _fast

        _FAST = _fast
    return _FAST


def split_points(total: int, units: list[int]) -> list[int]:
    """``total`` points split over whole ``units`` exactly (largest remainder, the earliest
    first on ties); all to none when every weight is 0."""
    whole = sum(units)
    if whole <= 0:
        return [0] * len(units)
    parts, remainders = [], []
    left = total
    for u in units:
        if u > 0:
            part, remainder = divmod(total * u, whole)
            left -= part
        else:
            part = remainder = 0
        parts.append(part)
        remainders.append(remainder)
    if 0 < left <= len(parts):  # (every remainder at least 0: a line earns one at most)
        give_largest(parts, remainders, left)
    elif left:  # (a stable sort, reversed: ties keep their order)
        for k in sorted(range(len(parts)), key=remainders.__getitem__, reverse=True)[:left]:
            parts[k] += 1
    return parts


def refunded_points(total: int, by_line: tuple[int, ...], line_paid: tuple[Decimal, ...],
                    lines_refunded: Sequence[Decimal], refunded: Decimal,
                    goods_paid: Decimal) -> int:
    """How many of ``total`` points refunds of ``refunded`` of ``goods_paid`` take back in
    all (see _refunded), rounded down once. Everything, when everything is refunded; never
    more, however the refunds are split."""
    if refunded == goods_paid:
        return total
    return math.floor(_refunded(total, by_line, line_paid, lines_refunded, refunded,
                                goods_paid))


def refunded_money(total: Decimal, by_line: tuple[Decimal, ...], line_paid: tuple[Decimal, ...],
                   lines_refunded: Sequence[Decimal], refunded: Decimal, goods_paid: Decimal,
                   q: Decimal) -> Decimal:
    """The same for an amount of money, rounded down once to the unit ``q``."""
    if refunded == goods_paid:
        return total
    units = math.floor(_refunded(total, by_line, line_paid, lines_refunded, refunded,
                                 goods_paid) / Fraction(q))
    return (Decimal(units) * q).quantize(q)


def _refunded(total: int | Decimal, by_line: tuple[int | Decimal, ...],
              line_paid: tuple[Decimal, ...], lines_refunded: Sequence[Decimal],
              refunded: Decimal, goods_paid: Decimal) -> Fraction:
    """Each line's own part of ``total`` in proportion to what is refunded of that line, the
    rest (the whole purchase's) in proportion to all that is refunded, added up exactly."""
    taken = Fraction(total - sum(by_line)) * Fraction(refunded) / Fraction(goods_paid)
    for k, own in enumerate(by_line):  # (none: all by money)
        done, paid = lines_refunded[k], line_paid[k]
        if done and paid:
            taken += Fraction(own) * Fraction(done) / Fraction(paid)
    return taken


# --- refunds ------------------------------------------------------------------------------------


@exact
def refund(program: Any, member: MemberState | dict[str, Any], event: dict[str, Any] | Any
           ) -> LifecycleDecision:
    """Refund part or all of an earlier purchase: what the refunded lines brought taken back
    (their own points and qualifying spend, and the purchase's shared part by money share;
    a full refund reverses exactly what was earned, partial refunds never more), points used
    to pay returned with the expiry they had. Unknown purchases and over-refunds are
    InputErrors and change nothing."""
    from ._member import coerce

    m = coerce(MemberState, member, "member")
    base_version = m.version
    ev = _refund_event(event)
    model, zone = _program_parts(program)
    m = in_unit_state(m, program.quantum, program.currency)
    refund_key = event_key("refund", ev["id"])
    if refund_key in m.recent_transactions:
        return _replayed(program, m, "refund", ev["id"], ev["at"])
    m, events = advance_state(model, m, ev["at"], zone)
    index, record = next(((k, p) for k, p in enumerate(m.purchases)
                          if p.id == ev["transaction_id"]), (-1, None))
    if record is None:
        raise InputError(f"no purchase {ev['transaction_id']!r} on file for this member "
                         f"(purchases are remembered for {model.ledger.refund_days} days)",
                         field="transaction_id", kind="refund")
    if ev["at"] < record.at:
        raise InputError(f"the refund is dated before purchase {record.id}", field="at",
                         kind="refund")
    if ev["at"] > record.at + timedelta(days=model.ledger.refund_days):
        raise InputError(f"purchase {record.id} is older than the {model.ledger.refund_days}-day "
                         "refund window", field="at", kind="refund")
    q = program.quantum
    fitted = record_in_unit(record, index, q, program.currency)
    if sum(fitted.line_paid) != fitted.goods_paid:  # (as every purchase writes them)
        raise InputError(f"line_paid adds up to {sum(fitted.line_paid):f}, not goods_paid "
                         f"{fitted.goods_paid:f}", field=f"purchases[{index}]", kind="member")
    if fitted is not record:  # (the state's own record: the refund finds it by identity)
        m = m.model_copy(update={"purchases": (*m.purchases[:index], fitted,
                                               *m.purchases[index + 1:])})
        record = fitted
    # (written in the currency's minor unit, as a purchase's amounts are: 50 as 50.00)
    currency, where = program.currency, ("amount",)
    if ev["amount"] is not None:
        ev["amount"] = in_unit(ev["amount"], q, currency, where, "refund")
    if ev["lines"] is not None:
        ev["lines"] = [(k, None if part is None else in_unit(part, q, currency, where, "refund"))
                       for k, part in ev["lines"]]
    lines = list(record.refunded_lines or (q * 0,) * len(record.line_paid))  # (0.00)
    refunded_whole: list[int] = []  # lines named whole that were refunded whole already
    if ev["lines"] is not None:
        amount = Decimal(0)
        for k, part in ev["lines"]:
            if not 0 <= k < len(record.line_paid):
                raise InputError(f"line {k} is not in purchase {record.id}", field="lines",
                                 kind="refund")
            left = record.line_paid[k] - lines[k]
            if part is None and not left and lines[k]:  # (not a line that cost nothing)
                refunded_whole.append(k)
            part = left if part is None else part
            if part > left:
                raise InputError(f"line {k}: {part:f} asked, {left:f} left to refund",
                                 field="lines", kind="refund")
            lines[k] += part
            amount += part
    else:
        amount = ev["amount"] if ev["amount"] is not None else record.goods_paid - record.refunded
        left = record.goods_paid - record.refunded
        if ev["amount"] is None and not left and record.goods_paid:
            raise InputError(f"purchase {record.id} is refunded already", field="amount",
                             kind="refund")
        if amount > left:
            raise InputError(f"{amount:f} asked, {left:f} left to refund on {record.id}",
                             field="amount", kind="refund")
        # an amount is spread over what is left of each line, so later line refunds add up
        remaining = [paid - done for paid, done in zip(record.line_paid, lines, strict=True)]
        for k, part in enumerate(allocate(amount, remaining, q)):
            lines[k] += part
    if amount <= 0 and refunded_whole:  # (what was named is all refunded already: said so)
        many = len(refunded_whole) > 1
        raise InputError(f"line{'s' if many else ''} {', '.join(map(str, refunded_whole))} of "
                         f"purchase {record.id} {'are' if many else 'is'} refunded already",
                         field="lines", kind="refund")
    if amount <= 0:
        raise InputError("nothing to refund", field="amount" if ev["lines"] is None else "lines",
                         kind="refund")
    refunded = record.refunded + amount
    if refunded > record.goods_paid:  # (lines of a record that say less than its total)
        raise InputError(f"{amount:f} asked, {record.goods_paid - record.refunded:f} left to "
                         f"refund on {record.id}", field="lines", kind="refund")
    full = refunded == record.goods_paid

    def share_money(total: Decimal, refunded_so_far: Decimal) -> Decimal:
        return refunded_money(total, (), record.line_paid, lines, refunded_so_far,
                              record.goods_paid, q)

    # what the refunds so far take back, less what earlier ones took: never below nothing
    # (a record edited by hand to say more was taken back made a refund add to the spend,
    # past what a state can hold, and give points)
    to_reverse = max(refunded_points(record.points, record.line_points, record.line_paid,
                                     lines, refunded, record.goods_paid)
                     - record.points_reversed, 0)
    return_total = refunded_points(record.redeemed_points, (), record.line_paid, lines,
                                   refunded, record.goods_paid)
    to_return = max(return_total - record.points_returned, 0)
    spend_total = refunded_money(record.qualifying_spend, record.line_spend, record.line_paid,
                                 lines, refunded, record.goods_paid, q)
    spend_back = max(spend_total - record.spend_reversed, q * 0)
    goods_pwp = min(record.paid_with_points, record.goods_paid)
    pwp_now = share_money(goods_pwp, refunded) - share_money(goods_pwp, record.refunded)
    money_refunded = amount - pwp_now

    at = ev["at"]
    book = _Book(m, at)
    recovered = 0
    # records this refund changes besides its own: a purchase whose points paid for this one,
    # refunded before it, gets back what its refund took in their place
    changed: dict[str, PurchaseRecord] = {}
    if to_return:
        # the points that paid come back first: what the purchase earned is then taken back
        # from them too, before anything is recorded as a shortfall. They keep the expiry
        # they had (a buy-and-return renews nothing); any past it by now expire at once
        parts = _returned_parts(record, to_return, expires_at(model.ledger.expiry, at, zone))
        events.append(new(LifecycleEvent, at=at, type="points_returned", rule="refund",
                                     points=to_return, detail="points that paid for it"))
        on_file = {p.id: p for p in m.purchases}
        # points a refund of their purchase still owes for come back first: they settle
        # that (points_unpaid) before other points could repay the debt or shortfall
        parts.sort(key=lambda part: not (part[1] in on_file and on_file[part[1]].points_unpaid))
        for k, (expires, source, points) in enumerate(parts):
            earlier = changed.get(source) or on_file.get(source) if source else None
            instead = None
            if earlier is not None and earlier.reversed_from:
                # points of a purchase refunded already, whose refund took other points in
                # their place: those come back instead, as they were
                def instead(left: int, earlier: PurchaseRecord = earlier) -> list[RedeemedPart]:
                    given, rest = _take_parts(earlier.reversed_from, left)
                    changed[earlier.id] = earlier.model_copy(update={"reversed_from": rest})
                    return given
            owed = earlier.points_unpaid if earlier is not None else 0
            if expires is not None and expires <= at:
                # dead already: back and gone at once, repaying no debt and no shortfall
                # (else a buy-and-return would still turn them into value), except those
                # an earlier refund took other points in place of, or could not take: those
                # come back as what was taken, or settle what it owes (below), as the same
                # refunds in the other order would have left them
                kept = sum(q.points for q in earlier.reversed_from) if earlier else 0
                dead = points - min(points, kept + owed)
                if dead:
                    book.redeemed -= dead
                    book.expired += dead
                    book.count_expired(source, dead)
                    events.append(new(LifecycleEvent, at=at, type="points_expired",
                                      rule="refund-return", points=-dead,
                                      detail=f"points returned by the refund had expired at "
                                             f"{expires.isoformat()}"))
                points -= dead
                if not points:
                    continue
            # (dead, or held for by an earlier refund: they settle what that refund owes
            # first, then come back as what it took in their place, which may repay the
            # rest of a debt or shortfall, before the points themselves could)
            made_good, gone, repaid, made = book.restore(
                points, f"{refund_key}:returned" + (f":{k + 1}" if k else ""),
                source or refund_key, at, expires, instead,
                settle=owed if instead is not None or (expires is not None and expires <= at)
                else None)
            recovered += made_good
            paid = min(owed, repaid)
            if paid:  # (the earlier refund's shortfall or debt these points made good)
                assert earlier is not None
                earlier = changed.get(earlier.id, earlier)
                changed[earlier.id] = earlier.model_copy(
                    update={"points_unpaid": earlier.points_unpaid - paid})
            # live points that made good what other refunds owe: as if those refunds had
            # found them and taken them in place of their spent points (as in the other
            # order), they hold them now, to give back if what those were spent on is
            # refunded
            if repaid > paid:
                made.insert(0, build(RedeemedPart, {
                    "expires_at": expires, "points": repaid - paid,
                    "source": source or refund_key, "available_at": at}))
            for part in made:
                _owed_elsewhere(m.purchases, changed, part)
            if gone:
                events.append(new(LifecycleEvent, at=at, type="points_expired",
                                  rule="refund-return", points=-gone,
                                  detail="points a refund had taken in their place came back "
                                         "past their expiry"))
        if recovered:
            events.append(new(LifecycleEvent, at=at, type="points_reversed", rule="refund",
                              points=-recovered, detail="an earlier refund's shortfall, made "
                              "good from the points given back"))
    covered: list[Taken] = []
    debt_before = book.debt
    reversed_points, shortfall, absorbed = book.reverse(
        to_reverse, record.id, model.ledger.negative_balance == "allow",
        # (its own points that came back just now past their expiry, in place of points of
        # the purchase they paid for, an earlier refund's, are gone too: not taken twice)
        record.points_expired + book.expired_by_source.get(record.id, 0)
        - record.expiry_absorbed, covered)
    if reversed_points:
        events.append(new(LifecycleEvent, at=at, type="points_reversed", rule="refund",
                                     points=-reversed_points, detail=f"refund of {record.id}"))
    if shortfall:
        events.append(new(LifecycleEvent, at=at, type="points_shortfall", rule="refund",
                                     points=-shortfall,
                                     detail="points already spent; recorded, not taken"))
    if absorbed:
        events.append(new(LifecycleEvent, at=at, type="points_reversed", rule="refund",
                          points=0, detail=f"{absorbed} of the points had already expired"))
    unpaid = shortfall + book.debt - debt_before  # (what it could not take back)
    if is_late(m, at):
        # a refund dated before the state's own instant: points it gave back that expired
        # between the two are expired now, as the state already is at that instant
        events += expire_late(model, book, at, m, m.last_purchase, zone)
    own, moved = _replace_taken(m.purchases, changed, record.id,
                                taken_parts(covered, pending=True), unpaid)
    base = changed.pop(record.id, record)
    new_record = record.model_copy(update={
        "refunded": refunded, "refunded_lines": tuple(lines),
        "points_reversed": record.points_reversed + to_reverse,
        # (as much as the record said, if it said more: see to_reverse)
        "points_returned": max(return_total, record.points_returned),
        "spend_reversed": max(spend_total, record.spend_reversed),
        "expiry_absorbed": record.expiry_absorbed + absorbed,
        "points_unpaid": base.points_unpaid + unpaid - moved,
        "reversed_from": (*base.reversed_from, *own)})
    # (records holding points taken in place of spent ones: most members have none)
    held = {p.id: changed.get(p.id, p) for p in m.purchases
            if p is not record and (p.reversed_from or p.id in changed)}
    held[record.id] = new_record
    for rid, settled in _settle_taken(book, {rid: rec for rid, rec in held.items()
                                             if rec.reversed_from}, refund_key, at,
                                      m.lots).items():
        if rid == record.id:
            new_record = settled
        else:
            changed[rid] = settled
    month = _month(record.at.astimezone(zone).date())
    log = dict(m.spend_log)
    none_left = q * 0  # (zero written in the currency's unit, as every amount: 0.00, not 0)
    if month in log:
        log[month] = max(log[month] - spend_back, none_left)
    state = book.state(m, **{
        # (the record itself, not every record of its id: an id forgotten after
        # remember_events may be used again while the first purchase is still on file)
        "purchases": _expired_counted(book, tuple(
            new_record if p is record else changed.get(p.id, p) for p in m.purchases)),
        "qualifying_spend": max(m.qualifying_spend - spend_back, none_left),
        "spend_log": log,
        "recent_transactions": (*m.recent_transactions, refund_key)[
            -model.ledger.remember_events:],
    })
    result = build(RefundResult, {
        "transaction_id": record.id, "amount": amount, "money_refunded": money_refunded,
        "points_reversed": reversed_points, "points_returned": to_return,
        "shortfall": shortfall, "shortfall_recovered": recovered,
        "spend_reversed": spend_back, "full": full})
    counts_held(state, "refund")
    return build(LifecycleDecision, {
        "program": _ref(program), "kind": "refund", "member_id": m.id, "event_id": ev["id"],
        "at": at, "points_change": (state.points + state.pending_points)
        - (m.points + m.pending_points), "events": tuple(events), "refund": result,
        "reward": None, "replayed": False, "member_version": base_version,
        "trace": None, "member_after": state})


def _refund_event(event: Any) -> dict[str, Any]:
    from ._money import parse_money

    read = event_from_text(event, "refund")
    if not isinstance(read, dict):
        raise InputError("a refund is a mapping with id, at, transaction_id and amount or "
                         f"lines, got {kind_of(event)}", kind="refund")
    event = read
    unknown = set(event) - set(EVENT_FIELDS["refund"])
    if unknown:
        raise InputError("unknown field", field=sorted(unknown)[0], kind="refund")
    for key in EVENT_NEEDS["refund"]:
        if event.get(key) in (None, ""):
            raise InputError("required", field=key, kind="refund")
    event_id = _event_text(event["id"], "id", "refund", ID_LENGTH)
    purchase_id = _event_text(event["transaction_id"], "transaction_id", "refund", ID_LENGTH)
    amount = None
    if event.get("amount") is not None:
        try:
            amount = parse_money(event["amount"])
        except ValueError as exc:
            raise InputError(str(exc), field="amount", kind="refund") from None
        if amount < 0:
            raise InputError(f"must not be negative (got {show_value(amount)})",
                             field="amount", kind="refund")
    lines = None
    if event.get("lines") is not None:
        if not isinstance(event["lines"], list):
            raise InputError("lines is a list such as [{line: 0}]", field="lines",
                             kind="refund")
        lines = []
        given: set[int] = set()
        for n, line in enumerate(event["lines"]):
            if not isinstance(line, dict) or set(line) - {"line", "amount"} \
                    or type(line.get("line")) is not int:
                raise InputError("each line is {line: N} or {line: N, amount: A}, N a whole "
                                 "number", field=f"lines[{n}]", kind="refund")
            if line["line"] in given:  # (once, or twice what was meant? said, not guessed)
                raise InputError(f"line {line['line']} is given twice: give each line once, "
                                 "with the amount to refund of it", field=f"lines[{n}]",
                                 kind="refund")
            given.add(line["line"])
            part = None
            if line.get("amount") is not None:
                try:
                    part = parse_money(line["amount"])
                except ValueError as exc:
                    raise InputError(str(exc), field=f"lines[{n}].amount",
                                     kind="refund") from None
                if part < 0:
                    raise InputError(f"must not be negative (got {show_value(part)})",
                                     field=f"lines[{n}].amount", kind="refund")
            lines.append((line["line"], part))
    if amount is not None and lines is not None:
        raise InputError("give amount or lines, not both", field="amount", kind="refund")
    return {"id": event_id, "at": _instant(event["at"], "at", "refund"),
            "transaction_id": purchase_id, "amount": amount, "lines": lines}


def _event_text(value: Any, field: str, kind: str, longest: int) -> str:
    """An event's id or channel: text of 1 to ``longest`` characters, as a purchase's. Not
    made text with str(): 0 and "0" (or ["R"] and "['R']") would be one event to the replay
    check; and a behaviour's ``when:`` reads the event as a purchase, which would refuse it
    with the validation library's own error."""
    if not isinstance(value, str):
        raise InputError(f"expected text (got {show_value(value)})", field=field, kind=kind)
    if not value:
        raise InputError("must not be empty", field=field, kind=kind)
    if len(value) > longest:
        raise InputError(f"must be at most {longest} characters long (got {len(value)})",
                         field=field, kind=kind)
    return text_of(value, field, kind)


def counts_held(state: Any, what: str, kind: str = "member") -> None:
    """Refuse a next state (a member's or a household's) whose counts the library could
    not read back (below 10^24: COUNT_LIMIT): a credit, gift or behaviour of any size, or
    one more event for a state at the limit, gave one. Its balance and totals bound every
    other count of points it holds (lots, usage, records)."""
    f = state.__dict__
    counts = [("points", abs(f["points"])), ("pending_points", f["pending_points"]),
              ("version", f["version"]), *f["totals"].__dict__.items()]
    if kind == "member":  # (a household's member_versions are its members' versions)
        counts += [("orders", f["orders"]), ("tier_falls", f["tier_falls"]),
                   ("points_debt", f["points_debt"])]
    for name, value in counts:
        if value >= COUNT_LIMIT:
            raise EvaluationError(name, f"the {what} brings the {kind}'s {name} to {value}, "
                                  f"more than a {kind}'s counts can hold (below 10^24)")


def _replayed(program: Any, m: MemberState, kind: str, event_id: str, at: datetime
              ) -> LifecycleDecision:
    return build(LifecycleDecision, {
        "program": _ref(program), "kind": kind, "member_id": m.id, "event_id": event_id,
        "at": at, "points_change": 0, "events": (), "refund": None, "reward": None,
        "replayed": True, "member_version": m.version, "trace": None, "member_after": m})


# --- behaviour events, rewards and credits ------------------------------------------------------


# each event's keys, and those it needs (what the calls read, and what a scenario file's
# steps are checked against when it is read)
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "refund": ("id", "at", "transaction_id", "amount", "lines"),
    "behaviour": ("id", "at", "type", "attrs", "channel"),
    "reward": ("id", "at", "reward", "stock"),
    "gift": ("id", "at", "points")}
EVENT_NEEDS: dict[str, tuple[str, ...]] = {
    "refund": ("id", "at", "transaction_id"), "behaviour": ("id", "at", "type"),
    "reward": ("id", "at", "reward"), "gift": ("id", "at", "points")}


def _simple_event(event: Any, kind: str) -> dict[str, Any]:
    read = event_from_text(event, kind)
    if not isinstance(read, dict):
        raise InputError(f"a {kind} event is a mapping (a JSON object), got "
                         f"{kind_of(event)}", kind=kind)
    event = read
    unknown = set(event) - set(EVENT_FIELDS[kind])
    if unknown:  # a misspelt key ("atrrs") would otherwise be read as absent
        raise InputError("unknown field", field=sorted(map(str, unknown))[0], kind=kind)
    for key in EVENT_NEEDS[kind]:
        if event.get(key) in (None, ""):
            raise InputError("required", field=key, kind=kind)
    out = dict(event)
    out["id"] = _event_text(event["id"], "id", kind, ID_LENGTH)
    for key in ("type", "reward"):  # names the program is matched against
        if key in event and event[key] is not None:
            if not isinstance(event[key], str):
                raise InputError(f"expected text (got {show_value(event[key])})", field=key,
                                 kind=kind)
            text_of(event[key], key, kind)
    if event.get("channel") is not None:
        out["channel"] = _event_text(event["channel"], "channel", kind, CHANNEL_LENGTH)
    out["at"] = _instant(event["at"], "at", kind)
    if event.get("attrs") is not None:
        from ._member import coerce_attrs

        out["attrs"] = coerce_attrs(event["attrs"], kind)
    return out


@exact
def behaviour(program: Any, member: MemberState | dict[str, Any], event: dict[str, Any],
              *, trace: bool = True) -> LifecycleDecision:
    """Points for a non-purchase action (行为积分): sign-up, review, check-in, referral …
    Rules match the event type and conditions; per-rule limits cap them per period. With
    ``trace`` (as evaluate()'s), the decision says which rules fired and why the others did
    not: explaining a condition that is false costs more than running it."""
    if trace is not True and trace is not False:
        trace = trace_flag(trace)
    from ._member import coerce

    m = coerce(MemberState, member, "member")
    base_version = m.version
    ev = _simple_event(event, "behaviour")
    key_of_event = event_key("behaviour", ev["id"])
    model, zone = _program_parts(program)
    m = in_unit_state(m, program.quantum, program.currency)
    if key_of_event in m.recent_transactions:
        return _replayed(program, m, "behaviour", ev["id"], ev["at"])
    m, events = advance_state(model, m, ev["at"], zone)
    today = ev["at"].astimezone(zone).date()
    book = _Book(m, ev["at"])
    usage = dict(m.usage)
    tier = m.tier or model.tiers[0].id
    attrs = ev.get("attrs") or {}
    entries: list[TraceEntry] = []

    def note(rule_id: str, status: Status, reason: str) -> None:
        if trace:
            entries.append(new(TraceEntry, rule=rule_id, kind="behaviour", status=status,
                               reason=reason))

    for rule in model.behaviours:
        if rule.event != ev["type"]:
            note(rule.id, "not_matched", f"for {rule.event} events, not {ev['type']}")
            continue
        if rule.tiers and tier not in rule.tiers:
            note(rule.id, "not_matched", f"tier {tier} is not one of {', '.join(rule.tiers)}")
            continue
        if rule.when is not None:
            why = _behaviour_condition(program, m, ev, attrs, rule, trace)
            if why is not None:
                note(rule.id, "not_matched", why)
                continue
        if rule.limit is not None:
            key = period_key(today, rule.limit.per)
            used = usage.get(rule.id)
            count = uses(used, key)
            if count >= rule.limit.times:
                note(rule.id, "not_matched", limit_reached(count, rule.limit.times,
                                                           rule.limit.per, key))
                continue
            _count_use(usage, rule.id, key, 1)
        note(rule.id, "fired", f"+{rule.points} points for {ev['type']}")
        book.earn(rule.points, f"{key_of_event}:{rule.id}", key_of_event, rule.id, ev["at"],
                  ev["at"] + timedelta(days=0), expires_at(model.ledger.expiry, ev["at"], zone))
        events.append(new(LifecycleEvent, at=ev["at"], type="behaviour_points", rule=rule.id,
                                     points=rule.points, detail=ev["type"]))
    late = _late_updates(model, book, ev["at"], m, zone, events)
    state = book.state(m, usage=usage, recent_transactions=(
        *m.recent_transactions, key_of_event)[
        -model.ledger.remember_events:], **late)
    counts_held(state, "behaviour")
    return build(LifecycleDecision, {
        "program": _ref(program), "kind": "behaviour", "member_id": m.id, "event_id": ev["id"],
        "at": ev["at"], "points_change": (state.points + state.pending_points)
        - (m.points + m.pending_points), "events": tuple(events), "refund": None,
        "reward": None, "replayed": False, "member_version": base_version,
        "trace": tuple(entries) if trace else None, "member_after": state})


def _behaviour_condition(program: Any, m: MemberState, ev: dict[str, Any],
                         attrs: dict[str, Any], rule: Any, trace: bool) -> str | None:
    """None when the rule's condition holds for the event, else why not (with the values
    read); an error is raised with the rule's trace entry."""
    from ._engine import _Ctx
    from ._member import Transaction

    if not isinstance(attrs, dict):
        raise InputError("attrs is a mapping of names to values", field="attrs",
                         kind="behaviour")
    channel = ev.get("channel") or "app"
    txn = Transaction(id=ev["id"], at=ev["at"], channel=channel,
                      items=({"sku": "-", "category": str(ev["type"]), "amount": "0"},))
    plan = program.plan("compiled")
    ctx = _Ctx(program, plan, m, txn, ev["at"].astimezone(program.zone), trace)
    ctx.event = {"id": ev["id"], "type": ev["type"], "channel": channel, "attrs": dict(attrs)}
    try:
        return ctx.when(rule.id, "behaviour", plan.behaviour_conditions[rule.id])
    finally:
        ctx.scope.release()


@exact
def redeem_reward(program: Any, member: MemberState | dict[str, Any], event: dict[str, Any]
                  ) -> LifecycleDecision:
    """Buy a reward from the catalogue (积分商城) with points: expiring lots are used first."""
    from ._member import coerce

    m = coerce(MemberState, member, "member")
    base_version = m.version
    ev = _simple_event(event, "reward")
    model, zone = _program_parts(program)
    m = in_unit_state(m, program.quantum, program.currency)
    if event_key("reward", ev["id"]) in m.recent_transactions:
        return _replayed(program, m, "reward", ev["id"], ev["at"])
    reward = next((r for r in model.rewards if r.id == ev["reward"]), None)
    if reward is None:
        raise InputError(f"no reward {ev['reward']!r} in the catalogue", field="reward",
                         kind="reward")
    m, events = advance_state(model, m, ev["at"], zone)
    tier = m.tier or model.tiers[0].id
    if reward.tiers and tier not in reward.tiers:
        raise InputError(f"{reward.id} is for tiers {list(reward.tiers)}, member is {tier}",
                         field="reward", kind="reward")
    if reward.window is not None:
        start, end = reward.window.bounds(zone)
        if (start is not None and ev["at"] < start) or (end is not None and ev["at"] >= end):
            raise InputError(f"{reward.id} is not offered at {ev['at'].isoformat()}",
                             field="at", kind="reward")
    stock = ev.get("stock")
    if stock is not None and (isinstance(stock, bool) or not isinstance(stock, int)):
        raise InputError(f"stock is a whole number, got {stock!r}", field="stock",
                         kind="reward")
    if stock is not None and stock <= 0:
        raise InputError(f"{reward.id} is out of stock", field="stock", kind="reward")
    usage = dict(m.usage)
    if reward.limit is not None:
        today = ev["at"].astimezone(zone).date()
        key = period_key(today, reward.limit.per)
        used = usage.get(f"reward:{reward.id}")
        count = uses(used, key)
        if count >= LATE:
            raise InputError(f"{reward.id}: redeemed in {key}, before the last redemption on "
                             f"record ({used.period if used else ''}): that period's "
                             "redemptions are not kept", field="at", kind="reward")
        if count >= reward.limit.times:
            raise InputError(f"{reward.id}: limit of {reward.limit.times} per "
                             f"{reward.limit.per} reached", field="reward", kind="reward")
        _count_use(usage, f"reward:{reward.id}", key, 1)
    book = _Book(m, ev["at"])
    book.redeem(reward.points, "reward", "reward")
    events.append(new(LifecycleEvent, at=ev["at"], type="reward_redeemed", rule=reward.id,
                                 points=-reward.points, detail=reward.id))
    state = book.state(m, usage=usage, recent_transactions=(
        *m.recent_transactions, event_key("reward", ev["id"]))[
        -model.ledger.remember_events:])
    counts_held(state, "reward")
    return build(LifecycleDecision, {
        "program": _ref(program), "kind": "reward", "member_id": m.id, "event_id": ev["id"],
        "at": ev["at"], "points_change": -reward.points, "events": tuple(events),
        "refund": None, "reward": reward.id, "replayed": False,
        "member_version": base_version, "trace": None, "member_after": state})


@exact
def credit(program: Any, member: MemberState | dict[str, Any], action: HostAction | dict[str, Any],
           at: datetime | str) -> LifecycleDecision:
    """Apply a host action (a referral reward) from another member's decision, once."""
    from ._member import coerce

    m = coerce(MemberState, member, "member")
    base_version = m.version
    act = coerce(HostAction, action, "credit")
    when = _instant(at, "at", "credit")
    if act.member_id != m.id:
        raise InputError(f"action is for member {act.member_id!r}", field="member_id",
                         kind="credit")
    model, zone = _program_parts(program)
    m = in_unit_state(m, program.quantum, program.currency)
    if event_key("credit", act.id) in m.recent_transactions:
        return _replayed(program, m, "credit", act.id, when)
    m, events = advance_state(model, m, when, zone)
    book = _Book(m, when)
    source = event_key("credit", act.id)
    book.earn(act.points, f"{source}:{act.rule}", source, act.rule, when, when,
              expires_at(model.ledger.expiry, when, zone))
    events.append(new(LifecycleEvent, at=when, type="points_earned", rule=act.rule,
                                 points=act.points, detail=act.reason))
    late = _late_updates(model, book, when, m, zone, events)
    state = book.state(m, recent_transactions=(
        *m.recent_transactions, event_key("credit", act.id))[-model.ledger.remember_events:],
        **late)
    counts_held(state, "credit")
    return build(LifecycleDecision, {
        "program": _ref(program), "kind": "credit", "member_id": m.id, "event_id": act.id,
        "at": when, "points_change": (state.points + state.pending_points)
        - (m.points + m.pending_points), "events": tuple(events), "refund": None,
        "reward": None, "replayed": False, "member_version": base_version,
        "trace": None, "member_after": state})


# --- gifting (权益共享) ------------------------------------------------------------------------


@exact
def gift(program: Any, giver: MemberState | dict[str, Any],
         receiver: MemberState | dict[str, Any], event: dict[str, Any]) -> GiftDecision:
    """Points given by ``giver`` to ``receiver``: the giver's expiring lots go first, the
    receiver gets a new lot. Both sides are decided together; apply them with
    :func:`apply_gift`, which applies both or neither."""
    from ._member import coerce

    g = coerce(MemberState, giver, "giver")
    r = coerce(MemberState, receiver, "receiver")
    ev = _simple_event(event, "gift")
    model, zone = _program_parts(program)
    g = in_unit_state(g, program.quantum, program.currency, "giver")
    r = in_unit_state(r, program.quantum, program.currency, "receiver")
    # a retry of a gift applied already (apply_gift applies both sides or neither) changes
    # nothing, as every other event's does: it gave again, or failed on the points it gave
    key = event_key("gift", ev["id"])
    given, got = key in g.recent_transactions, key in r.recent_transactions
    if given and got:
        return build(GiftDecision, {
            "gift_id": ev["id"], "points": ev["points"] if type(ev["points"]) is int else 0,
            "giver": _replayed(program, g, "gift_out", ev["id"], ev["at"]),
            "receiver": _replayed(program, r, "gift_in", ev["id"], ev["at"])})
    if given or got:
        raise InputError(f"gift {ev['id']!r} is applied to the "
                         f"{'giver' if given else 'receiver'} only: pass both states as "
                         "apply_gift returned them", field="id", kind="gift")
    rules = model.gifting
    if rules is None:
        raise InputError("this program does not allow gifting points", kind="gift")
    if g.id == r.id:
        raise InputError("a member cannot gift points to themselves", field="receiver",
                         kind="gift")
    points = ev["points"]
    if isinstance(points, bool) or not isinstance(points, int):
        raise InputError(f"a whole number of points, got {points!r}", field="points",
                         kind="gift")
    if points < rules.minimum or (rules.maximum is not None and points > rules.maximum):
        raise InputError(f"gifts are {rules.minimum} to {rules.maximum or 'any number of'} "
                         "points", field="points", kind="gift")
    g_version, r_version = g.version, r.version
    g, g_events = advance_state(model, g, ev["at"], zone)
    r, r_events = advance_state(model, r, ev["at"], zone)
    if rules.tiers and (g.tier or model.tiers[0].id) not in rules.tiers:
        raise InputError(f"only tiers {list(rules.tiers)} may give points", field="giver",
                         kind="gift")
    usage = dict(g.usage)
    if rules.monthly_limit is not None:
        key = period_key(ev["at"].astimezone(zone).date(), "month")
        used = usage.get("gifting")
        sent = uses(used, key)
        if sent >= LATE:
            raise InputError(f"a gift dated in {key}, before the last one on record "
                             f"({used.period if used else ''}): that month's gifts are not kept",
                             field="at", kind="gift")
        if sent + points > rules.monthly_limit:
            raise InputError(f"{sent} points given this month; the limit is "
                             f"{rules.monthly_limit}", field="points", kind="gift")
        _count_use(usage, "gifting", key, points)
    at = ev["at"]
    book = _Book(g, at)
    book.redeem(points, "gift", "points")
    g_events.append(new(LifecycleEvent, at=at, type="points_redeemed", rule="gifting",
                                   points=-points, detail=f"gift to {r.id}"))
    g_state = book.state(g, usage=usage, recent_transactions=(
        *g.recent_transactions, event_key("gift", ev["id"]))[-model.ledger.remember_events:])
    rbook = _Book(r, at)
    source = event_key("gift", ev["id"])
    rbook.earn(points, f"{source}:gift", source, "gifting", at, at,
               expires_at(model.ledger.expiry, at, zone))
    r_events.append(new(LifecycleEvent, at=at, type="points_earned", rule="gifting",
                                   points=points, detail=f"gift from {g.id}"))
    late = _late_updates(model, rbook, at, r, zone, r_events)
    r_state = rbook.state(r, recent_transactions=(
        *r.recent_transactions, event_key("gift", ev["id"]))[-model.ledger.remember_events:],
        **late)
    common = {"program": _ref(program), "event_id": ev["id"], "at": at, "refund": None,
              "reward": None, "replayed": False, "trace": None}
    counts_held(g_state, "gift")
    counts_held(r_state, "gift")
    return build(GiftDecision, {
        "gift_id": ev["id"], "points": points,
        "giver": build(LifecycleDecision, {
            **common, "kind": "gift_out", "member_id": g.id, "points_change": -points,
            "events": tuple(g_events), "member_version": g_version, "member_after": g_state}),
        "receiver": build(LifecycleDecision, {
            **common, "kind": "gift_in", "member_id": r.id,
            "points_change": (r_state.points + r_state.pending_points)
            - (r.points + r.pending_points),
            "events": tuple(r_events), "member_version": r_version, "member_after": r_state}),
    })


def apply_gift(giver: MemberState | dict[str, Any], receiver: MemberState | dict[str, Any],
               decision: GiftDecision) -> tuple[MemberState, MemberState]:
    """Both members' next states, or an InputError and neither: a gift is never half done.
    Replaying a gift already applied to both returns both states unchanged."""
    from ._ledger import apply
    from ._member import coerce

    g = coerce(MemberState, giver, "giver")
    r = coerce(MemberState, receiver, "receiver")
    if not isinstance(decision, GiftDecision):
        raise InputError("expected the GiftDecision that gift() returned (read one back from "
                         "JSON with lr.GiftDecision.model_validate_json)", field="decision",
                         kind="gift")
    key = event_key("gift", decision.gift_id)
    seen = (key in g.recent_transactions, key in r.recent_transactions)
    if seen == (True, True):
        return g, r
    if seen[0] != seen[1]:
        raise InputError("the gift was applied to one member only; restore both states",
                         kind="gift")
    new_g = apply(g, decision.giver)
    new_r = apply(r, decision.receiver)
    return new_g, new_r
