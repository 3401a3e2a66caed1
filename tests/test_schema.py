"""The published JSON Schema (schema/program.schema.json) is the one the CLI prints."""

from __future__ import annotations

import json
from pathlib import Path

from loyaltyrules._cli import program_schema

ROOT = Path(__file__).resolve().parent.parent


def test_published_schema_is_in_sync() -> None:
    """Regenerate with `loyaltyrules schema > schema/program.schema.json` when this fails."""
    published = json.loads((ROOT / "schema" / "program.schema.json").read_text("utf-8"))
    assert published == json.loads(json.dumps(program_schema(), ensure_ascii=False))


def test_bundled_programs_point_editors_at_the_schema() -> None:
    """Each bundled program starts with the yaml-language-server modeline."""
    for path in sorted((ROOT / "programs").glob("*.yaml")):
        first = path.read_text("utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/program.schema.json", path


def test_schema_describes_every_section() -> None:
    """The schema lists every top-level section a designer can write."""
    props = program_schema()["properties"]
    for section in ("program", "tiers", "perks", "earn", "multipliers", "birthday",
                    "promotions", "ledger", "redemption", "rewards", "reviews", "behaviours",
                    "referral", "gifting", "signals", "invariants", "lint", "policies"):
        assert section in props, section


def test_bounds_of_optional_numbers_are_written_as_json_schema_knows_them() -> None:
    """`signals[].times` is 1 to 100 and `max_per_transaction` at least 0 in the schema
    too, as `minimum`/`maximum` (found by helper-62: pydantic wrote `ge`/`le`, which JSON
    Schema ignores, so an editor accepted `times: 0`)."""
    schema = program_schema()
    text = json.dumps(schema)
    assert '"ge":' not in text and '"le":' not in text
    times = schema["$defs"]["Signal"]["properties"]["times"]["anyOf"][0]
    assert (times["type"], times["minimum"], times["maximum"]) == ("integer", 1, 100)
    cap = schema["$defs"]["PointsPolicy"]["properties"]["max_per_transaction"]["anyOf"][0]
    assert (cap["type"], cap["minimum"]) == ("integer", 0)
