"""loyaltyrules — customer loyalty programs (会员体系) in YAML, evaluated into exact,
explained decisions.

>>> import loyaltyrules as lr                                          # doctest: +SKIP
>>> program = lr.load_program("programs/retail-4tier.yaml")            # doctest: +SKIP
>>> decision = lr.evaluate(program, member, transaction)               # doctest: +SKIP
>>> member = lr.apply(member, decision)                                # doctest: +SKIP
"""

from ._decision import (
    Decision,
    DiscountLine,
    GiftDecision,
    HostAction,
    LifecycleDecision,
    LifecycleEvent,
    PerkGrant,
    PointsLine,
    ProgramRef,
    RefundResult,
    TraceEntry,
    UsageConsumed,
)
from ._engine import evaluate
from ._errors import (
    AlreadyApplied,
    Diagnostic,
    EvaluationError,
    InputError,
    LoyaltyError,
    ProgramError,
    StaleMemberState,
)
from ._household import (
    HouseholdChange,
    household_contribute,
    household_join,
    household_leave,
    household_withdraw,
    with_household,
)
from ._ledger import apply
from ._lifecycle import (
    advance,
    apply_gift,
    behaviour,
    check_identity,
    credit,
    gift,
    redeem_reward,
    refund,
)
from ._member import (
    HouseholdState,
    LineItem,
    MemberState,
    PointsLot,
    PointsTotals,
    PurchaseRecord,
    RedeemedPart,
    Transaction,
    Usage,
    read_member,
    read_transaction,
)
from ._program import Program, load_program

__version__ = "0.1.0"

__all__ = [
    "AlreadyApplied",
    "Decision",
    "Diagnostic",
    "DiscountLine",
    "EvaluationError",
    "GiftDecision",
    "HostAction",
    "HouseholdChange",
    "HouseholdState",
    "InputError",
    "LifecycleDecision",
    "LifecycleEvent",
    "LineItem",
    "LoyaltyError",
    "MemberState",
    "PerkGrant",
    "PointsLine",
    "PointsLot",
    "PointsTotals",
    "Program",
    "ProgramError",
    "ProgramRef",
    "PurchaseRecord",
    "RedeemedPart",
    "RefundResult",
    "StaleMemberState",
    "TraceEntry",
    "Transaction",
    "Usage",
    "UsageConsumed",
    "__version__",
    "advance",
    "apply",
    "apply_gift",
    "behaviour",
    "check_identity",
    "credit",
    "evaluate",
    "gift",
    "household_contribute",
    "household_join",
    "household_leave",
    "household_withdraw",
    "load_program",
    "read_member",
    "read_transaction",
    "redeem_reward",
    "refund",
    "with_household",
]
