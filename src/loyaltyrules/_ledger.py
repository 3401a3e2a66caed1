"""Applying a decision: the member's next state, exactly once.

Every decision (a purchase's :class:`Decision` or a :class:`LifecycleDecision`) carries the
member's next state, computed by the pure function that made it. ``apply`` hands it over only
when it belongs to the state given: the same member, the same version, not applied before.
"""

from __future__ import annotations

from typing import Any

from ._decision import Decision, LifecycleDecision
from ._errors import InputError
from ._lifecycle import event_key
from ._member import MemberState, coerce

__all__ = ["apply"]


def apply(member: MemberState | dict[str, Any] | str,
          decision: Decision | LifecycleDecision) -> MemberState:
    """The member's state after ``decision``.

    Applying a decision whose event id the state already holds returns the state unchanged
    (a retried event never pays twice; ids are remembered for the last ``ledger.
    remember_events`` events). A decision made from another version of the member's state is
    refused: evaluate again on the current state.

    >>> state = apply(member, evaluate(program, member, txn))    # doctest: +SKIP
    """
    m = coerce(MemberState, member, "member")
    if not isinstance(decision, (Decision, LifecycleDecision)):
        raise InputError("expected a Decision or LifecycleDecision", kind="decision")
    if decision.member_id != m.id:
        raise InputError(
            f"decision is for member {decision.member_id!r}, not {m.id!r}",
            field="member_id", kind="decision",
        )
    if isinstance(decision, Decision):
        key: str | None = decision.transaction_id
    else:
        key = None if decision.event_id is None else event_key(decision.kind, decision.event_id)
    if key is not None and key in m.recent_transactions:
        return m
    if isinstance(decision, LifecycleDecision) and (
            decision.replayed or (decision.kind == "advance" and m.advanced_to is not None
                                  and m.advanced_to >= decision.at)):
        return m
    if decision.member_after is None:
        raise InputError("decision carries no next state", kind="decision")
    if decision.member_version != m.version:
        raise InputError(
            f"decision was made from version {decision.member_version} of this member's state, "
            f"not {m.version}: evaluate again on the current state",
            field="version", kind="decision",
        )
    return decision.member_after
