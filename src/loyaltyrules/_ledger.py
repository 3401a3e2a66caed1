"""Member state transitions: applying a decision to a member gives the member's next state.

Pure: a new :class:`MemberState` is returned; the one passed in is never changed.
"""

from __future__ import annotations

from typing import Any

from ._decision import Decision
from ._errors import InputError
from ._member import MemberState, Usage, coerce

__all__ = ["RECENT_TRANSACTIONS", "apply"]

#: How many transaction ids a member state remembers, so a retried transaction is not
#: applied twice. Bounded so the state stays small; older ids are forgotten.
RECENT_TRANSACTIONS = 50


def apply(member: MemberState | dict[str, Any] | str, decision: Decision) -> MemberState:
    """The member's state after ``decision``; applying the same transaction twice changes
    nothing the second time.

    >>> state = apply(member, evaluate(program, member, txn))    # doctest: +SKIP
    """
    m = coerce(MemberState, member, "member")
    if not isinstance(decision, Decision):
        decision = coerce(Decision, decision, "decision")
    if decision.member_id != m.id:
        raise InputError(
            f"decision is for member {decision.member_id!r}, not {m.id!r}",
            field="member_id", kind="decision",
        )
    if decision.transaction_id in m.recent_transactions:
        return m
    usage = dict(m.usage)
    for used in decision.usage:
        current = usage.get(used.rule)
        count = current.count + 1 if current is not None and current.period == used.period else 1
        usage[used.rule] = Usage(period=used.period, count=count)
    recent = (*m.recent_transactions, decision.transaction_id)[-RECENT_TRANSACTIONS:]
    last = m.last_purchase
    if last is None or decision.local_date > last:
        last = decision.local_date
    return m.model_copy(
        update={
            "tier": decision.tier_after,
            "points": m.points + decision.points_total,
            "qualifying_spend": m.qualifying_spend + decision.qualifying_spend,
            "orders": m.orders + 1,
            "last_purchase": last,
            "usage": usage,
            "recent_transactions": recent,
        }
    )
