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
    # (fields read from the models' __dict__: a pydantic model's attribute read costs several
    # dict reads, and a host applies every decision; a purchase's next state, and the
    # version beside it, are made when first read, so those two are read as attributes)
    fields, d_fields = m.__dict__, decision.__dict__
    if d_fields["member_id"] != fields["id"]:
        raise InputError(
            f"decision is for member {d_fields['member_id']!r}, not {fields['id']!r}",
            field="member_id", kind="decision",
        )
    purchase = isinstance(decision, Decision)
    if purchase:
        key: str | None = d_fields["transaction_id"]
    else:
        key = None if (event_id := d_fields["event_id"]) is None else event_key(
            d_fields["kind"], event_id)
    if key is not None and key in fields["recent_transactions"]:
        return m
    if not purchase and (d_fields["replayed"] or (
            d_fields["kind"] == "advance" and (advanced := fields["advanced_to"]) is not None
            and advanced >= d_fields["at"])):
        return m
    after = decision.member_after
    if after is None:
        raise InputError("decision carries no next state", kind="decision")
    if (version := decision.member_version) != fields["version"]:
        raise InputError(
            f"decision was made from version {version} of this member's state, "
            f"not {fields['version']}: evaluate again on the current state",
            field="version", kind="decision",
        )
    return after
