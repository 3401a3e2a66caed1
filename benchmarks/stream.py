"""Streaming benchmark: `loyaltyrules run` over a large generated transaction file.

    python -m benchmarks.stream --transactions 1000000 --members 100000
    python -m benchmarks.stream --refund-days 30     # members keep 30 days of purchases

Writes the file under a temporary folder (about 250 MB for a million lines), runs the real
command in a subprocess on one core and reports transactions/s and peak memory (RSS).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("beauty", "apparel", "food", "home")


def write_transactions(path: Path, count: int, members: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            at = start + timedelta(seconds=n * 31_536_000 // count)
            items = [
                {"sku": f"s{rng.randrange(500)}", "category": rng.choice(CATEGORIES),
                 "amount": f"{rng.randrange(100, 100000) / 100:.2f}"}
                for _ in range(rng.randint(1, 5))
            ]
            out.write(json.dumps({
                "id": f"t{n}", "member_id": f"m{rng.randrange(members)}",
                "at": at.isoformat(), "channel": rng.choice(["online", "store"]),
                "items": items,
            }) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream")
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--program", default=str(ROOT / "programs" / "reference-4tier.yaml"))
    parser.add_argument("--refund-days", type=int, default=None,
                        help="run a copy of the program with this ledger.refund_days: how "
                             "long each member keeps its purchase records (the memory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transactions.jsonl"
        write_transactions(path, args.transactions, args.members)
        program = args.program
        if args.refund_days is not None:
            program = str(Path(tmp) / "program.yaml")
            text = Path(args.program).read_text(encoding="utf-8")
            if re.search(r"^ledger:", text, re.MULTILINE):
                parser.error(f"{args.program} has a ledger section: set refund_days there")
            # (added as text: PyYAML's own loader would read keys such as on: as true)
            Path(program).write_text(f"{text}\nledger: {{refund_days: {args.refund_days}}}\n",
                                     encoding="utf-8")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "loyaltyrules", "run", program, str(path),
             "--quiet", "--state-out", str(Path(tmp) / "states.jsonl")],
            stdout=subprocess.DEVNULL, check=True, cwd=ROOT,
        )
        elapsed = time.perf_counter() - started
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    window = "" if args.refund_days is None else f" (refund_days {args.refund_days})"
    print(f"{args.transactions:,} transactions for {args.members:,} members{window}: "
          f"{elapsed:.1f} s, {args.transactions / elapsed:,.0f} transactions/s, "
          f"peak RSS {peak_kb / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
