"""Households (家庭共享): a share of each purchase's points pooled, used and left behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import loyaltyrules as lr

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"


def program(*, ledger: dict[str, Any] | None = None, gifting: dict[str, Any] | None = None,
            redemption: dict[str, Any] | None = None, **households: Any) -> lr.Program:
    data: dict[str, Any] = {
        "program": {"id": "fam", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}, {"id": "silver", "qualify": {"spend": 1000}}],
        "earn": [{"id": "base", "points": 1, "per": 1}],
        "households": {"share": "50%", **households},
    }
    if ledger is not None:
        data["ledger"] = ledger
    if gifting is not None:
        data["gifting"] = gifting
    if redemption is not None:
        data["redemption"] = redemption
    return lr.Program.from_dict(data)


def buy(p: lr.Program, m: lr.MemberState, txn_id: str, day: int, amount: str
        ) -> tuple[lr.MemberState, lr.Decision]:
    d = lr.evaluate(p, m, {"id": txn_id, "at": f"2026-01-{day:02d}T10:00:00+08:00",
                           "items": [{"sku": "x", "amount": amount}]})
    return lr.apply(m, d), d


def pool_identity(h: lr.HouseholdState) -> bool:
    t = h.totals
    return t.earned - t.redeemed - t.expired - t.reversed == h.points + h.pending_points == sum(
        lot.points for lot in h.lots)


def family(p: lr.Program, household_id: str = "chen"
           ) -> tuple[lr.HouseholdState, lr.MemberState, lr.MemberState]:
    c = lr.household_join(p, None, lr.MemberState(id="mum"), household_id=household_id)
    h, mum = c.household, c.member
    c = lr.household_join(p, h, lr.MemberState(id="son"))
    return c.household, mum, c.member


def test_half_of_each_purchase_goes_to_the_pool() -> None:
    """share 50%: ¥600 earns 600 points, 300 stay with mum and 300 go to the pool."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    assert (c.member.points, c.household.points, c.points) == (300, 300, 300)
    assert c.household.contributions == {"mum": 300}
    assert lr.check_identity(c.member) and pool_identity(c.household)
    again = lr.household_contribute(p, c.household, c.member, d)
    assert (again.household, again.member, again.points) == (c.household, c.member, 0)


def test_two_members_purchases_of_one_id_are_both_contributed() -> None:
    """Purchase ids are per member (mum's t1 and her son's t1 are two purchases): both pool
    their half (before, the son's was taken for mum's and silently skipped). A household
    stored with the old key, `contribute:t1`, still counts t1 as contributed."""
    p = program()
    h, mum, son = family(p)
    mum, d_mum = buy(p, mum, "t1", 1, "600.00")
    son, d_son = buy(p, son, "t1", 2, "200.00")
    c = lr.household_contribute(p, h, mum, d_mum)
    c2 = lr.household_contribute(p, c.household, son, d_son)
    assert (c.points, c2.points, c2.household.points) == (300, 100, 400)
    assert c2.household.contributions == {"mum": 300, "son": 100}
    legacy = h.model_copy(update={"recent_events": ("contribute:t1",)})
    assert lr.household_contribute(p, legacy, mum, d_mum).points == 0
    # mum's decision passed with her son's state is refused, not taken for his retry
    # (helper-100: "already contributed")
    with pytest.raises(lr.InputError) as refused:
        lr.household_contribute(p, c2.household, c2.member, d_mum)
    assert str(refused.value) == ("household: decision: the decision is member mum's "
                                  "purchase, not son's")



def test_two_members_withdrawals_of_one_id_are_both_made() -> None:
    """Regression: the household remembered withdrawals by event id alone, so the son's
    withdrawal W1 of 50 points, after mum's W1 of 100, was taken for a retry of hers and
    silently skipped (0 points moved). Withdrawals are remembered per member, as
    contributions are; a household stored with the old key, `withdraw:W1`, still counts W1
    as withdrawn."""
    p = program()
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    c = lr.household_withdraw(p, c.household, c.member, 100, "2026-01-02T10:00:00+08:00",
                              event_id="W1")
    c2 = lr.household_withdraw(p, c.household, son, 50, "2026-01-02T11:00:00+08:00",
                               event_id="W1")
    assert (c.points, c2.points, c2.member.points, c2.household.points) == (100, 50, 50, 150)
    assert [lot.id for lot in c2.member.lots] == ["withdraw:W1:son"]
    again = lr.household_withdraw(p, c2.household, c2.member, 50, "2026-01-02T11:00:00+08:00",
                                  event_id="W1")
    assert (again.household, again.member, again.points) == (c2.household, c2.member, 0)
    legacy = c.household.model_copy(update={"recent_events": ("withdraw:W1",)})
    assert lr.household_withdraw(p, legacy, son, 50, "2026-01-02T11:00:00+08:00",
                                 event_id="W1").points == 0

def test_a_withdrawal_id_is_held_to_a_purchase_id_s_length() -> None:
    """An event id of 128 characters is taken, and the states it makes read back from their
    JSON; one longer is refused. Before, any length was taken and written into ids the
    states' own bounds then refused to read back (found by helper-93)."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    taken = lr.household_withdraw(p, c.household, c.member, 100, "2026-01-02T10:00:00+08:00",
                                  event_id="w" * 128)
    assert lr.MemberState.model_validate_json(taken.member.model_dump_json()) == taken.member
    assert lr.HouseholdState.model_validate_json(
        taken.household.model_dump_json()) == taken.household
    with pytest.raises(lr.InputError) as caught:
        lr.household_withdraw(p, c.household, c.member, 100, "2026-01-02T10:00:00+08:00",
                              event_id="w" * 129)
    assert str(caught.value) == "household: event_id: must be at most 128 characters long (got 129)"


def test_tiers_on_group_spend() -> None:
    """tiers_on: group — mum's ¥600 and the son's ¥500 make ¥1,100: the son becomes silver."""
    p = program(tiers_on="group")
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    son, d2 = buy(p, lr.with_household(son, h), "t2", 2, "500.00")
    assert d2.tier_after == "silver"
    alone = program(tiers_on="individual")
    assert lr.evaluate(alone, lr.MemberState(id="son"), {
        "id": "t2", "at": "2026-01-02T10:00:00+08:00",
        "items": [{"sku": "x", "amount": "500.00"}]}).tier_after == "basic"


def test_only_the_owner_uses_the_pool_when_the_program_says_so() -> None:
    """redeem: owner — the son cannot draw from the pool; mum can, expiring lots first."""
    p = program(redeem="owner")
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    h, mum = c.household, c.member
    with pytest.raises(lr.InputError, match="owner"):
        lr.household_withdraw(p, h, son, 100, "2026-01-03T10:00:00+08:00", event_id="w1")
    c = lr.household_withdraw(p, h, mum, 100, "2026-01-03T10:00:00+08:00", event_id="w1")
    assert (c.member.points, c.household.points) == (400, 200)
    assert lr.check_identity(c.member) and pool_identity(c.household)
    with pytest.raises(lr.InputError, match="in the pool"):
        lr.household_withdraw(p, c.household, c.member, 201, "2026-01-03T11:00:00+08:00",
                              event_id="w2")


@pytest.mark.parametrize(("policy", "son_points", "pool_points", "pool_expired"),
                         [("stay", 250, 550, 0), ("take_share", 500, 300, 0),
                          ("forfeit", 250, 300, 250)])
def test_what_happens_to_pooled_points_when_a_member_leaves(
        policy: str, son_points: int, pool_points: int, pool_expired: int) -> None:
    """The son pooled 250 of 500 points: on leaving they stay, follow him, or lapse."""
    p = program(on_leave=policy)
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    son, d2 = buy(p, son, "t2", 2, "500.00")
    c = lr.household_contribute(p, h, son, d2)
    c = lr.household_leave(p, c.household, c.member, "2026-01-04T10:00:00+08:00")
    assert (c.member.points, c.household.points) == (son_points, pool_points)
    assert c.household.totals.expired == pool_expired
    assert c.household.members == ("mum",)
    assert c.member.household is None
    assert lr.check_identity(c.member) and pool_identity(c.household)


def test_household_size_is_limited() -> None:
    """max_members 2: a third member is refused and nothing changes."""
    p = program(max_members=2)
    h, _, _ = family(p)
    with pytest.raises(lr.InputError, match="at most 2"):
        lr.household_join(p, h, lr.MemberState(id="dad"))


def test_group_spend_accumulates() -> None:
    """The household's spend is the sum of its members' qualifying spend."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    assert (c.household.spend, c.member.household_spend) == (Decimal("600.00"),
                                                             Decimal("600.00"))


def test_a_household_spend_adds_up_beyond_one_amount_and_stays_readable() -> None:
    """A household's spend adds its members' purchases up: read below 10^18 (as a member's
    is), beyond the 10^15 of one amount, and a contribution that would take it to 10^18 is
    refused (rule `spend`) rather than give a state the library could not read back."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "100.00")
    big = lr.household_contribute(p, h.model_copy(update={"spend": Decimal("999999999999999.00")}),
                                  mum, d)
    assert big.household.spend == big.member.household_spend == Decimal("1000000000000099.00")
    assert reloads(big.household) and reloads(big.member)
    full = h.model_copy(update={"spend": Decimal("999999999999999901.00")})
    with pytest.raises(lr.EvaluationError) as failed:
        lr.household_contribute(p, full, mum, d)
    assert (failed.value.rule, str(failed.value)) == ("spend", (
        "rule 'spend' failed: the contribution brings the household's spend to "
        "1000000000000000001.00, more than a spend can count (below 10^18)"))
    with pytest.raises(lr.InputError) as refused:
        lr.household_contribute(p, {**h.model_dump(mode="json"),
                                    "spend": "1000000000000000000"}, mum, d)
    assert str(refused.value) == ("household: spend: expected an amount below 10^18, got "
                                  "'1000000000000000000'")


def reloads(state: lr.MemberState | lr.HouseholdState) -> bool:
    """The state survives the host's JSON round trip unchanged."""
    return type(state).model_validate_json(state.model_dump_json()) == state


# --- regressions --------------------------------------------------------------------------------


@pytest.mark.parametrize("points", [5.5, "5", None, True, False, Decimal(5), [5]])
def test_withdraw_refuses_points_that_are_not_a_whole_number(points: Any) -> None:
    """Regression: 5.5 was withdrawn (the son's state could not be loaded again), "5" and None
    raised a bare TypeError, True counted as 1 point; each is an InputError on points now."""
    p = program()
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    with pytest.raises(lr.InputError, match="whole number") as exc:
        lr.household_withdraw(p, h, son, points, "2026-01-03T10:00:00+08:00", event_id="w1")
    assert (exc.value.kind, exc.value.field) == ("household", "points")
    c = lr.household_withdraw(p, h, son, 5, "2026-01-03T10:00:00+08:00", event_id="w1")
    assert (c.member.points, c.household.points, c.points) == (5, 295, 5)
    assert reloads(c.member) and reloads(c.household)


@pytest.mark.parametrize("points", [0, -5])
def test_withdraw_refuses_no_points(points: int) -> None:
    """Withdrawing zero or fewer points is an InputError on points."""
    p = program()
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    with pytest.raises(lr.InputError, match="at least 1") as exc:
        lr.household_withdraw(p, h, son, points, "2026-01-03T10:00:00+08:00", event_id="w1")
    assert (exc.value.kind, exc.value.field) == ("household", "points")


@pytest.mark.parametrize("event_id", [None, 5, "", ["w1"]])
def test_withdraw_needs_an_event_id_string(event_id: Any) -> None:
    """Regression: any event_id was accepted (None, 5, ""); the id makes a retry safe, so it
    must be a non-empty string."""
    p = program()
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    h = lr.household_contribute(p, h, mum, d).household
    with pytest.raises(lr.InputError) as exc:
        lr.household_withdraw(p, h, son, 5, "2026-01-03T10:00:00+08:00", event_id=event_id)
    assert (exc.value.kind, exc.value.field) == ("household", "event_id")


def test_contribute_needs_the_decision_object() -> None:
    """Regression: None, the decision as a dict or as JSON raised AttributeError; like
    ``apply``, contributing takes the Decision itself and refuses anything else."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    advanced = lr.advance(p, mum, "2026-01-02T00:00:00+08:00")
    for bad in (None, d.model_dump(), d.model_dump_json(), "t1", advanced):
        with pytest.raises(lr.InputError, match="Decision") as exc:
            lr.household_contribute(p, h, mum, bad)  # type: ignore[arg-type]
        assert (exc.value.kind, exc.value.field) == ("household", "decision")


@pytest.mark.parametrize(("household_id", "field"),
                         [(5, "household_id"), (["chen"], "household_id"), ("", "household_id"),
                          (None, "household_id"), ("h" * 129, "id")])
def test_a_new_household_needs_a_valid_id(household_id: Any, field: str) -> None:
    """Regression: a household id that was not a string, or longer than 128 characters, raised
    pydantic's ValidationError from household_join; it is an InputError."""
    p = program()
    with pytest.raises(lr.InputError) as exc:
        lr.household_join(p, None, lr.MemberState(id="mum"), household_id=household_id)
    assert (exc.value.kind, exc.value.field) == ("household", field)


@pytest.mark.parametrize("length", [1, 118, 119, 128])
def test_every_valid_household_id_works(length: int) -> None:
    """Regression: household ids of 119 to 128 characters (valid for HouseholdState) made
    contribute, withdraw and leave raise pydantic's ValidationError; they work now."""
    p = program(on_leave="take_share")
    h, mum, son = family(p, "h" * length)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    mum = c.member
    assert (mum.points, c.household.points) == (300, 300)
    c = lr.household_withdraw(p, c.household, son, 100, "2026-01-02T10:00:00+08:00",
                              event_id="w1")
    assert (c.member.points, c.household.points) == (100, 200)
    c = lr.household_leave(p, c.household, mum, "2026-01-03T10:00:00+08:00")
    assert (c.member.points, c.household.points) == (500, 0)
    assert lr.check_identity(c.member) and pool_identity(c.household)
    assert reloads(c.member) and reloads(c.household)


def rfm_family() -> tuple[lr.Program, lr.HouseholdState, lr.MemberState, lr.MemberState]:
    text = (PROGRAMS / "rfm-3tier.yaml").read_text(encoding="utf-8")
    p = lr.load_program(text + "\nhouseholds: {share: 100%}\n")
    h, mum, son = family(p)
    return p, h, mum, son


def test_pending_points_stay_pending_in_the_pool() -> None:
    """Regression: with pending_days 7, mum's 900 pending points went through the pool and
    the son could spend them five minutes later; the pooled lot is pending until mum's points
    would have become usable (2026-03-10 10:00), and only then can be withdrawn."""
    p, h, mum, son = rfm_family()
    d = lr.evaluate(p, mum, {"id": "t1", "at": "2026-03-03T10:00:00+08:00",
                             "items": [{"sku": "x", "amount": "1000.00"}]})
    mum = lr.apply(mum, d)
    assert (mum.points, mum.pending_points) == (0, 900)
    c = lr.household_contribute(p, h, mum, d)
    assert (c.member.points, c.member.pending_points, c.points) == (0, 0, 900)
    assert (c.household.points, c.household.pending_points) == (0, 900)
    assert pool_identity(c.household) and lr.check_identity(c.member)
    for at in ("2026-03-03T10:05:00+08:00", "2026-03-10T09:59:59+08:00"):
        with pytest.raises(lr.InputError, match="0 usable in the pool") as exc:
            lr.household_withdraw(p, c.household, son, 900, at, event_id="w1")
        assert exc.value.field == "points"
    w = lr.household_withdraw(p, c.household, son, 900, "2026-03-10T10:00:00+08:00",
                              event_id="w1")
    assert (w.member.points, w.member.pending_points) == (900, 0)
    assert (w.household.points, w.household.pending_points) == (0, 0)
    assert pool_identity(w.household) and lr.check_identity(w.member)


def test_contributing_after_the_points_are_usable_pools_them_usable() -> None:
    """A purchase contributed after its points were released pools them usable at once."""
    p, h, mum, son = rfm_family()
    d = lr.evaluate(p, mum, {"id": "t1", "at": "2026-03-03T10:00:00+08:00",
                             "items": [{"sku": "x", "amount": "1000.00"}]})
    mum = lr.apply(mum, d)
    mum = lr.apply(mum, lr.advance(p, mum, "2026-03-11T00:00:00+08:00"))
    assert (mum.points, mum.pending_points) == (900, 0)
    c = lr.household_contribute(p, h, mum, d)
    assert (c.household.points, c.household.pending_points) == (900, 0)
    w = lr.household_withdraw(p, c.household, son, 900, "2026-03-11T00:05:00+08:00",
                              event_id="w1")
    assert (w.member.points, w.household.points) == (900, 0)


def test_pending_pooled_points_stay_pending_when_taken_out_on_leaving() -> None:
    """take_share: the son's usable pooled 250 leave usable, his pending pooled 150 leave
    pending until 2026-01-17 10:00, as his own purchase's points do."""
    p = program(on_leave="take_share", ledger={"pending_days": 7})
    h, _, son = family(p)
    son, d1 = buy(p, son, "t1", 1, "500.00")
    c = lr.household_contribute(p, h, son, d1)
    h, son = c.household, c.member
    son, d2 = buy(p, lr.apply(son, lr.advance(p, son, "2026-01-09T00:00:00+08:00")), "t2", 10,
                  "300.00")
    c = lr.household_contribute(p, h, son, d2)
    assert (c.household.points, c.household.pending_points) == (250, 150)
    c = lr.household_leave(p, c.household, c.member, "2026-01-11T10:00:00+08:00")
    assert (c.member.points, c.member.pending_points) == (500, 300)
    assert (c.household.points, c.household.pending_points, c.points) == (0, 0, 400)
    assert lr.check_identity(c.member) and pool_identity(c.household)
    son = lr.apply(c.member, lr.advance(p, c.member, "2026-01-17T10:00:00+08:00"))
    assert (son.points, son.pending_points) == (800, 0)


def test_leaving_twice_with_take_share_keeps_lot_ids_unique() -> None:
    """Regression: leaving, rejoining and leaving again gave two lots the same id
    (leave:chen:son), and spending 60 of the 400 points afterwards left 230, not 340."""
    p = program(on_leave="take_share", gifting={})
    h, _, son = family(p)
    son, d = buy(p, son, "t1", 1, "100.00")
    c = lr.household_contribute(p, h, son, d)
    c = lr.household_leave(p, c.household, c.member, "2026-01-02T10:00:00+08:00")
    c = lr.household_join(p, c.household, c.member)
    son, d = buy(p, c.member, "t2", 3, "300.00")
    c = lr.household_contribute(p, c.household, son, d)
    c = lr.household_leave(p, c.household, c.member, "2026-01-04T10:00:00+08:00")
    son = c.member
    assert son.points == 400
    assert len({lot.id for lot in son.lots}) == len(son.lots)
    friend = lr.MemberState(id="friend")
    g = lr.gift(p, son, friend, {"id": "g1", "at": "2026-01-05T10:00:00+08:00", "points": 60})
    son, _ = lr.apply_gift(son, friend, g)
    assert son.points == 340 and lr.check_identity(son)


@pytest.mark.parametrize(("refund", "pooled", "kept", "spend"),
                         [({}, 0, 0, "0.00"), ({"amount": "300.00"}, 150, 150, "300.00")])
def test_a_purchase_refunded_before_it_is_contributed_counts_for_what_is_left(
        refund: dict[str, Any], pooled: int, kept: int, spend: str) -> None:
    """Regression: mum's ¥600 purchase (600 points) refunded in full before she contributed
    it still added ¥600 to the group's spend (the son then qualified for silver on money
    returned); refunded by half (300 points left), all 300 went to the pool instead of 50%.
    A contribution counts the purchase as it stands after its refunds."""
    p = program(tiers_on="group")
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    mum = lr.apply(mum, lr.refund(p, mum, {"id": "r1", "at": "2026-01-01T11:00:00+08:00",
                                           "transaction_id": "t1", **refund}))
    c = lr.household_contribute(p, h, mum, d)
    assert (c.points, c.household.points, c.member.points) == (pooled, pooled, kept)
    assert (c.household.spend, c.member.household_spend) == (Decimal(spend), Decimal(spend))
    assert lr.check_identity(c.member) and pool_identity(c.household)
    son, d2 = buy(p, lr.with_household(son, c.household), "t2", 2, "500.00")
    assert d2.tier_after == "basic"


@pytest.mark.parametrize("spent", [100, 60])
def test_a_purchase_whose_points_a_refund_gave_back_is_contributed_in_full(spent: int) -> None:
    """Regression: mum's ¥100 purchase X (100 points) paid for ``spent`` points of her next
    purchase Y, and Y was refunded in full, which gave X's points back. Contributing X then
    pooled 0 (or 40) of its 50, and X counted as contributed, so the rest could never be
    pooled: the points came back under the refund's name, not X's. They come back as X's,
    and X pools its 50 as if Y had never been bought."""
    p = program(redemption={"points": 1, "value": 1}, ledger={"expiry": {"months": 12}})
    h, mum, _ = family(p)
    mum, x = buy(p, mum, "X", 1, "100.00")
    alone = lr.household_contribute(p, h, mum, x)  # (Y never bought)
    y = lr.evaluate(p, mum, {"id": "Y", "at": "2026-01-02T10:00:00+08:00",
                             "redeem_points": spent, "items": [{"sku": "x", "amount": "100.00"}]})
    mum = lr.apply(mum, y)
    mum = lr.apply(mum, lr.refund(p, mum, {"id": "RY", "at": "2026-01-03T10:00:00+08:00",
                                           "transaction_id": "Y"}))
    assert (mum.points, sum(lot.points for lot in mum.lots if lot.source == "X")) == (100, 100)
    c = lr.household_contribute(p, h, mum, x)
    assert (c.points, c.member.points, c.household.points) == (50, 50, 50)
    assert (alone.points, alone.member.points, alone.household.points) == (50, 50, 50)
    assert c.household.contributions == {"mum": 50}
    assert lr.check_identity(c.member) and pool_identity(c.household)


# --- stale member states ------------------------------------------------------------------------


def contributed(p: lr.Program) -> tuple[lr.HouseholdState, lr.MemberState, lr.MemberState,
                                        lr.MemberState, lr.Decision]:
    """mum's ¥600 purchase applied (600 points) and half of it contributed: the household,
    mum before contributing (stale now), mum after, the son, and the purchase."""
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    return c.household, mum, c.member, son, d


def test_a_contribution_retried_with_the_old_member_state_is_refused() -> None:
    """Regression: retrying a contribution with mum's state from before it ("already
    contributed") handed that state back, 600 points, while the pool also held 300 of them:
    a host storing it had 300 points twice. The old state is refused as stale; retrying with
    the state the contribution returned changes nothing."""
    p = program()
    h, old, mum, _, d = contributed(p)
    assert (old.version, mum.version, h.member_versions["mum"]) == (2, 3, 3)
    with pytest.raises(lr.StaleMemberState, match="stale") as exc:
        lr.household_contribute(p, h, old, d)
    assert (exc.value.kind, exc.value.field) == ("household", "member")
    assert (exc.value.member_id, exc.value.version, exc.value.latest) == ("mum", 2, 3)
    again = lr.household_contribute(p, h, mum, d)
    assert (again.household, again.member, again.points) == (h, mum, 0)


def test_a_withdrawal_retried_with_the_old_member_state_is_refused() -> None:
    """Regression: retrying a withdrawal of 100 points with the state from before it
    ("already withdrawn") handed that state back without the 100 points, which the pool no
    longer held either: 100 points lost. The old state is refused as stale."""
    p = program()
    h, _, mum, _, _ = contributed(p)
    w = lr.household_withdraw(p, h, mum, 100, "2026-01-02T10:00:00+08:00", event_id="w1")
    assert (w.member.points, w.household.points) == (400, 200)
    with pytest.raises(lr.StaleMemberState, match="stale"):
        lr.household_withdraw(p, w.household, mum, 100, "2026-01-02T10:00:00+08:00",
                              event_id="w1")
    again = lr.household_withdraw(p, w.household, w.member, 100, "2026-01-02T10:00:00+08:00",
                                  event_id="w1")
    assert (again.member, again.household, again.points) == (w.member, w.household, 0)


@pytest.mark.parametrize("call", ["join", "withdraw", "leave", "with_household"])
def test_every_household_call_refuses_a_member_state_older_than_the_one_it_returned(
        call: str) -> None:
    """mum's state from before her contribution would drop its move of 300 points to the
    pool: join, withdraw, leave and with_household refuse it with StaleMemberState (an
    InputError of kind household on member) and change nothing."""
    p = program(on_leave="take_share")
    h, old, _, _, _ = contributed(p)
    calls = {
        "join": lambda: lr.household_join(p, h, old),
        "withdraw": lambda: lr.household_withdraw(p, h, old, 10, "2026-01-02T10:00:00+08:00",
                                                  event_id="w1"),
        "leave": lambda: lr.household_leave(p, h, old, "2026-01-02T10:00:00+08:00"),
        "with_household": lambda: lr.with_household(old, h),
    }
    with pytest.raises(lr.InputError, match="state of member 'mum' is stale: version 2, "
                                            "but household chen returned version 3") as exc:
        calls[call]()
    assert isinstance(exc.value, lr.StaleMemberState)


def test_a_newer_member_state_is_accepted() -> None:
    """Events applied to the member after the household's call (a later purchase) make a
    newer state, which every household call takes."""
    p = program(on_leave="take_share")
    h, _, mum, _, _ = contributed(p)
    mum, d2 = buy(p, mum, "t2", 3, "200.00")
    c = lr.household_contribute(p, h, mum, d2)
    assert (c.points, c.household.points, c.household.member_versions["mum"]) == (
        100, 400, mum.version + 1)
    c = lr.household_leave(p, c.household, c.member, "2026-01-04T10:00:00+08:00")
    assert (c.member.points, c.household.points) == (800, 0)


def test_a_member_state_from_before_leaving_cannot_rejoin() -> None:
    """The son left with his 250 pooled points (take_share); his state from before leaving
    still says he is in household chen, and rejoining with it would lose those points: it is
    refused. His state after leaving rejoins."""
    p = program(on_leave="take_share")
    h, _, son = family(p)
    son, d = buy(p, son, "t1", 1, "500.00")
    c = lr.household_contribute(p, h, son, d)
    before = c.member
    c = lr.household_leave(p, c.household, before, "2026-01-02T10:00:00+08:00")
    assert (c.member.points, c.household.points) == (500, 0)
    with pytest.raises(lr.StaleMemberState):
        lr.household_join(p, c.household, before)
    again = lr.household_join(p, c.household, c.member)
    assert again.household.members == ("mum", "son") and again.member.points == 500


def test_a_household_stored_before_member_versions_still_works() -> None:
    """A household stored without `member_versions` loads, checks nothing it does not know,
    and remembers the version of each member state it returns from then on."""
    p = program()
    h, _, mum, _, _ = contributed(p)
    data = h.model_dump(mode="json")
    del data["member_versions"]
    legacy = lr.HouseholdState.model_validate(data)
    assert legacy.member_versions == {}
    w = lr.household_withdraw(p, legacy, mum, 100, "2026-01-02T10:00:00+08:00", event_id="w1")
    assert (w.member.points, w.household.points) == (400, 200)
    assert w.household.member_versions == {"mum": w.member.version}
    assert reloads(w.household)


def test_member_versions_stay_bounded_by_former_members() -> None:
    """Former members are remembered (a stale state cannot rejoin), but only the last 500;
    current members always are."""
    p = program(max_members=3)
    h = lr.household_join(p, None, lr.MemberState(id="mum"), household_id="chen").household
    for n in range(520):
        c = lr.household_join(p, h, lr.MemberState(id=f"guest{n}"))
        h = lr.household_leave(p, c.household, c.member, "2026-01-02T10:00:00+08:00").household
    assert len(h.member_versions) == 501
    assert "mum" in h.member_versions and "guest519" in h.member_versions
    assert "guest19" not in h.member_versions and "guest20" in h.member_versions


def test_ownership_passes_to_who_is_left_or_to_the_next_to_join() -> None:
    """redeem: owner. Mum owns the household she made; when she leaves, the son, the first
    member left, owns it and may use the pool. When he leaves too, no one owns it, and dad,
    joining next, does. Regression: an owner who left as the last member stayed the owner,
    and dad, its only member, was refused the pool."""
    p = program(redeem="owner")
    h, _, mum, son, _ = contributed(p)
    assert (h.owner, h.points) == ("mum", 300)
    h = lr.household_leave(p, h, mum, "2026-01-02T10:00:00+08:00").household
    assert (h.members, h.owner) == (("son",), "son")
    c = lr.household_withdraw(p, h, son, 100, "2026-01-02T11:00:00+08:00", event_id="W1")
    c = lr.household_leave(p, c.household, c.member, "2026-01-02T12:00:00+08:00")
    assert (c.household.members, c.household.owner) == ((), None)
    assert reloads(c.household)
    c = lr.household_join(p, c.household, lr.MemberState(id="dad"))
    assert (c.household.members, c.household.owner) == (("dad",), "dad")
    c = lr.household_withdraw(p, c.household, c.member, 200, "2026-01-03T10:00:00+08:00",
                              event_id="W2")
    assert (c.member.points, c.household.points) == (200, 0)


def test_a_household_stored_with_an_owner_who_has_left_is_owned_as_if_ownership_passed() -> None:
    """Households stored before ownership passed on can name as owner mum, who left as the
    last member: with no one in it, dad joining owns it; with dad already in it (he joined
    next), he owns it and may use the pool, and the household returned names him."""
    p = program(redeem="owner")
    h = contributed(p)[0]  # 300 points pooled
    emptied = h.model_copy(update={"members": (), "owner": "mum"})
    assert lr.household_join(p, emptied, lr.MemberState(id="dad")).household.owner == "dad"
    joined = h.model_copy(update={"members": ("dad",), "owner": "mum"})
    w = lr.household_withdraw(p, joined, lr.MemberState(id="dad", household="chen"), 100,
                              "2026-01-02T11:00:00+08:00", event_id="W1")
    assert (w.member.points, w.household.points, w.household.owner) == (100, 200, "dad")


# --- properties ---------------------------------------------------------------------------------


HOUSEHOLD_PROGRAMS = {policy: program(on_leave=policy, ledger={"pending_days": 2,
                                                                "expiry": {"months": 1}})
                      for policy in ("stay", "take_share", "forfeit")}
household_steps = st.lists(st.tuples(
    st.sampled_from(["buy", "contribute", "withdraw", "leave", "join", "refund", "advance"]),
    st.sampled_from(["mum", "son"]), st.integers(1, 900), st.integers(0, 60 * 24 * 5)),
    max_size=25)


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(policy=st.sampled_from(sorted(HOUSEHOLD_PROGRAMS)), steps=household_steps)
@example(policy="forfeit", steps=[  # mum's first points expire as her leave brings her on
    *(("buy", "mum", 1, minutes) for minutes in (289, 335, 650, 799, 1051, 1401, 1616, 2408,
                                                  3477, 5599, 5608, 5832, 6796, 7199)),
    ("leave", "mum", 1, 2420)])
def test_household_calls_on_the_latest_states_move_points_and_never_make_them(
        policy: str, steps: list[tuple[str, str, int, int]]) -> None:
    """Any sequence of purchases, refunds, advances and household calls, each on the latest
    states, is never refused as stale, keeps both ledgers' identities, and moves points
    between the members and the pool without making any: what leaves both is counted as
    expired (a forfeit lapses the pool's share; a call first brings the member to its
    moment, when its own points may expire)."""
    p = HOUSEHOLD_PROGRAMS[policy]
    c = lr.household_join(p, None, lr.MemberState(id="mum"), household_id="chen")
    h, members = c.household, {"mum": c.member, "son": lr.MemberState(id="son")}
    decisions: dict[str, lr.Decision] = {}
    at = datetime.fromisoformat("2026-01-01T10:00:00+08:00")

    def held() -> int:
        return sum(s.points + s.pending_points for s in (*members.values(), h))

    for n, (kind, who, x, minutes) in enumerate(steps):
        at += timedelta(minutes=minutes)
        m, when = members[who], at.isoformat()
        try:
            if kind == "buy":
                seen = lr.with_household(m, h) if who in h.members else m
                d = lr.evaluate(p, seen, {"id": f"t{n}", "at": when,
                                          "items": [{"sku": "x", "amount": f"{x}.00"}]})
                members[who], decisions[who] = lr.apply(m, d), d
                continue
            if kind == "refund" and m.purchases:
                record = m.purchases[x % len(m.purchases)]
                members[who] = lr.apply(m, lr.refund(p, m, {
                    "id": f"r{n}", "at": when, "transaction_id": record.id}))
                continue
            if kind == "advance":
                members[who] = lr.apply(m, lr.advance(p, m, when))
                continue
            before, lapsed = held(), h.totals.expired + m.totals.expired
            if kind == "contribute" and who in decisions:
                c = lr.household_contribute(p, h, m, decisions[who])
            elif kind == "withdraw":
                c = lr.household_withdraw(p, h, m, x, when, event_id=f"w{n}")
            elif kind == "leave":
                c = lr.household_leave(p, h, m, when)
            elif kind == "join":
                c = lr.household_join(p, h, m)
            else:
                continue
        except lr.StaleMemberState:
            raise
        except lr.InputError:
            continue
        h, members[who] = c.household, c.member
        assert lr.check_identity(c.member) and pool_identity(h)
        assert held() == before - (h.totals.expired + c.member.totals.expired - lapsed)


def test_a_withdrawal_first_brings_the_member_to_its_moment() -> None:
    """Mum's 600 points of 5 January are pending for 7 days; half go to the pool. Her
    withdrawal of 100 on 20 January first releases her other 300 (reported in the change's
    events) and the state says it stands at 20 January; a later advance reports nothing
    again (before, the state stayed at 5 January, counted as of the 20th, and the advance
    reported the releases a second time)."""
    p = program(ledger={"pending_days": 7, "expiry": {"months": 1}})
    c = lr.household_join(p, None, lr.MemberState(id="mum"), household_id="h")
    h, mum = c.household, c.member
    mum, d = buy(p, mum, "T1", 5, "600.00")
    c = lr.household_contribute(p, h, mum, d)
    w = lr.household_withdraw(p, c.household, c.member, 100, "2026-01-20T10:00:00+08:00",
                              event_id="W1")
    assert [(e.type, e.points) for e in w.events] == [("points_released", 300)]
    assert (w.member.points, w.member.pending_points) == (400, 0)
    assert w.member.advanced_to == datetime(2026, 1, 20, 2, tzinfo=UTC)
    assert lr.check_identity(w.member)
    later = lr.advance(p, w.member, "2026-01-25T10:00:00+08:00")
    assert (later.events, later.points_change) == ((), 0)


def test_a_member_leaving_late_keeps_no_points_past_their_expiry() -> None:
    """`expiry: {months: 1}`, `on_leave: take_share`. Mum's 100 pooled points of 5 January
    expire at the end of 5 February; her state already stands at 1 March when her leaving,
    dated 10 January, arrives: the points she takes out expired on 6 February, and the
    change says so (before, she kept them for ever)."""
    p = program(ledger={"expiry": {"months": 1}}, on_leave="take_share")
    c = lr.household_join(p, None, lr.MemberState(id="mum"), household_id="h")
    h, mum = c.household, c.member
    mum, d = buy(p, mum, "T1", 5, "200.00")
    c = lr.household_contribute(p, h, mum, d)
    mum = lr.apply(c.member, lr.advance(p, c.member, "2026-03-01T00:00:00+08:00"))
    left = lr.household_leave(p, c.household, mum, "2026-01-10T10:00:00+08:00")
    assert left.points == 100
    assert [(e.type, e.points, e.at.isoformat()) for e in left.events] == [
        ("points_expired", -100, "2026-02-06T00:00:00+08:00")]
    assert (left.member.points, left.member.totals.expired) == (0, 200)
    assert lr.check_identity(left.member)


def test_a_household_or_member_spend_with_more_decimals_than_the_currency_is_refused() -> None:
    """A household's spend of 0.001 yuan (a state written by other code) was added to by
    each contribution; it is refused, as a member's is, before anything is added to it."""
    p = program(gifting={})
    h, mum, son = family(p)
    mum, d = buy(p, mum, "t1", 1, "100.00")
    wrong = h.model_copy(update={"spend": Decimal("0.001")})
    calls = [
        lambda: lr.household_join(p, wrong, lr.MemberState(id="dad")),
        lambda: lr.household_contribute(p, wrong, mum, d),
        lambda: lr.household_withdraw(p, wrong, son, 10, "2026-01-02T10:00:00+08:00",
                                     event_id="w1"),
        lambda: lr.household_leave(p, wrong, son, "2026-01-02T10:00:00+08:00"),
    ]
    for call in calls:
        with pytest.raises(lr.InputError) as refused:
            call()
        assert str(refused.value) == "household: spend: 0.001 has more decimals than CNY allows"
    odd = lr.MemberState(id="friend", qualifying_spend=Decimal("5.005"))
    with pytest.raises(lr.InputError) as refused:
        lr.gift(p, mum, odd, {"id": "g1", "at": "2026-01-05T10:00:00+08:00", "points": 10})
    assert str(refused.value) == "receiver: qualifying_spend: 5.005 has more decimals than CNY " \
        "allows"
    with pytest.raises(lr.InputError) as refused:
        lr.household_join(p, h, odd)
    assert str(refused.value) == "member: qualifying_spend: 5.005 has more decimals than CNY " \
        "allows"
    # the same household, its spend as the library wrote it, takes the contribution
    assert lr.household_contribute(p, h, mum, d).household.spend == Decimal("100.00")
    # a new household's spend, and its members' copy of it, are in the unit from the start
    fresh = lr.household_join(p, None, lr.MemberState(id="mum"), household_id="new")
    assert (str(fresh.household.spend), str(fresh.member.household_spend)) == ("0.00", "0.00")
    # and one written 0.010 (a fen, written longer) adds to it in the unit: 100.01
    longer = h.model_copy(update={"spend": Decimal("0.010")})
    assert str(lr.household_contribute(p, longer, mum, d).household.spend) == "100.01"


@pytest.mark.parametrize(("written", "spend"), [("10.000", "90.00"), ("10", "90.00"),
                                                ("10.001", None)])
def test_a_contribution_reads_the_purchase_record_in_the_currencys_unit(
        written: str, spend: str | None) -> None:
    """A purchase refunded by 10 yuan before it is contributed adds 90.00 of its 100.00: a
    record written 10.000 by other code gave the household 90.000, and one written 10.001
    gave it 89.999, which the member's next purchase then refused."""
    p = program()
    h, mum, _ = family(p)
    mum, d = buy(p, mum, "t1", 1, "100.00")
    data = mum.model_dump(mode="json")
    data["purchases"][0]["spend_reversed"] = written
    mum = lr.MemberState.model_validate(data)
    if spend is None:
        with pytest.raises(lr.InputError) as refused:
            lr.household_contribute(p, h, mum, d)
        assert str(refused.value) == ("member: purchases[0].spend_reversed: 10.001 has more "
                                      "decimals than CNY allows")
        return
    c = lr.household_contribute(p, h, mum, d)
    assert (str(c.household.spend), str(c.member.household_spend)) == (spend, spend)


def test_a_pool_whose_counts_would_pass_what_a_state_holds_is_an_error() -> None:
    """Two members earning 6 × 10^23 points each (an absurd earn rate, but one the engine
    takes) pooled all of them: the pool's earned total passed 10^24 and the household's
    state did not read back (found by review, helper-84). The second contribution is an
    EvaluationError naming the first count past it (the pool's balance); the first is
    taken."""
    p = lr.Program.from_dict({
        "program": {"id": "fam", "version": 1, "currency": "CNY", "timezone": "Asia/Shanghai"},
        "tiers": [{"id": "basic"}], "earn": [{"id": "base", "points": 10**9, "per": 1}],
        "households": {"share": "100%"}})
    h, mum, son = family(p)
    mum, d_mum = buy(p, mum, "t1", 1, "600000000000000.00")
    son, d_son = buy(p, son, "t1", 1, "600000000000000.00")
    first = lr.household_contribute(p, h, mum, d_mum)
    assert first.household.totals.earned == 6 * 10**23 and reloads(first.household)
    # a former member's version the household remembers is not one of its counts
    ghost = h.model_copy(update={"member_versions": {**h.member_versions, "ghost": 10**24}})
    assert lr.household_join(p, ghost, lr.MemberState(id="dad")).household.version == \
        h.version + 1
    with pytest.raises(lr.EvaluationError) as failed:
        lr.household_contribute(p, first.household, son, d_son)
    assert (failed.value.rule, str(failed.value)) == ("points", (
        "rule 'points' failed: the contribution brings the household's points to "
        "1200000000000000000000000, more than a household's counts can hold (below 10^24)"))
