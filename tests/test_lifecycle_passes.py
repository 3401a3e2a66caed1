"""The ledger's passes over a member's lots take shortcuts; these tests hold them to the plain
reading (hypothesis).

A member may hold two years of lots, and each event passes over them several times, so the
passes compare each lot with a bound moved to the lots' own UTC offset (``_like``: the same
instant, compared without asking either side for its offset), and the points-expiring
warning reads only the lots whose warning can be due. Each is checked here against the
definition it shortcuts: every lot compared as given, every lot's warning worked out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr
from loyaltyrules._lifecycle import _days_before, _like, _local_midnight, _signals
from loyaltyrules._member import PointsLot, fixed_offset
from loyaltyrules._model import ProgramModel

NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = datetime(2026, 1, 1, tzinfo=UTC)

# offsets as the library holds them (one shared object per offset), a datetime.timezone of
# its own and a host's ZoneInfo: a bound may come in any of them
zones = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)),
                         timezone(timedelta(hours=5, minutes=45)), NEW_YORK, SHANGHAI])
instants = st.builds(
    lambda minutes, zone: (BASE + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(-60 * 24 * 800, 60 * 24 * 800), zones)


def held(value: datetime) -> datetime:
    """An instant as a validated state holds it (its fixed offset, one object per offset)."""
    return PointsLot.model_validate({"id": "x", "points": 1, "earned": 1, "earned_at": value,
                                     "available_at": value, "source": "s",
                                     "rule": "r"}).earned_at


def lot(n: int, expires: datetime | None, available: datetime | None = None) -> PointsLot:
    at = available or BASE
    return PointsLot(id=f"t{n}:base", points=n + 1, earned=n + 1, earned_at=at,
                     available_at=at, expires_at=expires, source=f"t{n}", rule="base")


@settings(max_examples=300, deadline=None)
@given(st.lists(instants, min_size=3, max_size=6), instants)
@example([datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)] * 3,
         datetime(2026, 11, 1, 1, 10, fold=1, tzinfo=NEW_YORK))   # a fold: wall clock lies
def test_a_bound_moved_to_the_lots_offset_compares_as_the_instant_it_is(
        times: list[datetime], bound: datetime) -> None:
    lots = [lot(k, held(t), held(t)) for k, t in enumerate(times)]
    for field in ("available_at", "expires_at"):
        moved = _like(bound, lots, field)
        assert moved.timestamp() == bound.timestamp()  # (== is False for a fold's time)
        for x in lots:
            value = getattr(x, field)
            assert (value <= moved) == (value <= bound)
            assert (value < moved) == (value < bound)


def reference_warnings(model: ProgramModel, lots: list[PointsLot], start: datetime,
                       until: datetime, fired: dict[str, str]) -> list[lr.LifecycleEvent]:
    """The points-expiring warning read plainly: every lot's warning worked out, in order."""
    out: list[lr.LifecycleEvent] = []
    sig = model.signals[0]
    days = sig.days or 0
    for x in sorted((x for x in lots if x.expires_at is not None),
                    key=lambda x: x.expires_at or until):
        assert x.expires_at is not None
        when = _days_before(x.expires_at, days, NEW_YORK)
        if when <= until and start < x.expires_at \
                and fired.get(sig.id, "") < x.expires_at.isoformat():
            fired[sig.id] = x.expires_at.isoformat()
            soon = sum(y.points for y in lots if y.expires_at == x.expires_at)
            out.append(lr.LifecycleEvent(at=max(when, start), type="signal", rule=sig.id,
                                         detail=f"{soon} points expire at "
                                                f"{x.expires_at.isoformat()}"))
    return out


def warning_program(days: int) -> ProgramModel:
    program = lr.load_program(f"""
program: {{id: warn, name: Warn, version: "1", currency: USD, timezone: America/New_York}}
tiers: [{{id: member, name: Member}}]
earn: [{{id: base, points: 1, per: 1}}]
ledger: {{expiry: {{months: 12}}}}
signals: [{{id: expiring, on: points_expiring, days: {days}}}]
""")
    return program.model


# lots expiring at local midnights around the 2026 changes of the clocks, some never
expiries = st.lists(st.one_of(st.none(), st.integers(0, 400).map(
    lambda d: _local_midnight(date(2026, 1, 1) + timedelta(days=d), NEW_YORK))),
    min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(expiries, st.sampled_from([0, 1, 7, 30, 90]), st.integers(-20, 420),
       st.integers(0, 60 * 24 * 120), st.sampled_from(["", "2026-03-09T00:00:00-04:00"]))
@example([_local_midnight(date(2026, 3, 9), NEW_YORK)] * 3 + [None], 1, 66, 30 * 60, "")
# the clocks go back in the night of 1 November: a warning a day before a lot that expires
# at midnight on the 2nd comes 25 hours before it, and is due half an hour into the 1st
@example([_local_midnight(date(2026, 11, 2), NEW_YORK)] * 3, 1, 303, 12 * 60 + 30, "")
def test_expiry_warnings_read_only_the_lots_that_can_be_due(
        expires: list[datetime | None], days: int, first: int, minutes: int, before: str
        ) -> None:
    model = warning_program(days)
    lots = [lot(k, e) for k, e in enumerate(expires)]
    start = fixed_offset(datetime(2026, 1, 1, 12, tzinfo=NEW_YORK) + timedelta(days=first))
    until = start + timedelta(minutes=minutes)
    member = lr.MemberState(id="m1", lots=lots, points=sum(x.points for x in lots))
    fired = {"expiring": before} if before else {}
    expected_fired = dict(fired)
    expected = reference_warnings(model, lots, start, until, expected_fired)
    got = _signals(model, member, tuple(lots), start, until, NEW_YORK, fired)
    assert got == expected
    assert fired == expected_fired
