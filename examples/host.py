"""A minimal host application: keep member states in a dict, evaluate purchases, persist.

Run it from the repository root: ``python examples/host.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import loyaltyrules as lr

HERE = Path(__file__).resolve().parent


def main() -> None:
    program = lr.load_program(HERE.parent / "programs" / "retail-4tier.yaml")
    members: dict[str, lr.MemberState] = {}
    for line in (HERE / "members.jsonl").read_text(encoding="utf-8").splitlines():
        state = lr.read_member(line)  # (a key given twice refused, numbers as written)
        members[state.id] = state

    for line in (HERE / "transactions.jsonl").read_text(encoding="utf-8").splitlines():
        txn = lr.read_transaction(line)
        assert txn.member_id is not None
        member = members[txn.member_id]
        decision = lr.evaluate(program, member, txn, trace=False)
        members[txn.member_id] = lr.apply(member, decision)   # persist this in a real host
        print(f"{txn.id}: pay {decision.payable} {decision.currency}, "
              f"+{decision.points_total} points, tier {decision.tier_after}")

    final = {m.id: m.model_dump(mode="json", include={"tier", "points", "qualifying_spend"})
             for m in members.values()}
    print(json.dumps(final, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
