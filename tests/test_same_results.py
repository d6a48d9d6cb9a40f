"""benchmarks/same_results.py's extraction and comparison (no benchmark is run here)."""

from __future__ import annotations

import json

from benchmarks import same_results as sr


def test_lines_keeps_result_lines_and_masks_timings() -> None:
    extract = sr.lines(r"^(routed|sent)")
    output = (
        "backend sqlite, load average 1.3\n"
        "routed: 1,000 events -> 1,500 deliveries in 0.21 s (7,143/s)\n"
        "sent: 1,500 deliveries (500 emails) in 3.2 s (469/s)\n"
    )
    assert extract(output) == {
        "line 1": "routed: 1,000 events -> 1,500 deliveries in … (…)",
        "line 2": "sent: 1,500 deliveries (500 emails) in … (…)",
    }
    slower = output.replace("0.21 s (7,143/s)", "0.42 s (3,571/s)").replace("1.3", "2.0")
    assert extract(slower) == extract(output)


def test_lines_drop_and_extra_masks() -> None:
    extract = sr.lines(r"^\s*\d", drop=(r"^\s*\(",), mask=(r"\S+ / \S+",))
    out = extract("   0  0.923 / 0.854\n(5 s; load average now 1.0)\n   1 12\n")
    assert out == {"line 1": "0 …", "line 2": "1 12"}


def test_json_lines_flatten_and_drop_timing_keys() -> None:
    extract = sr.json_lines(r"second|seconds")
    output = "noise\n" + json.dumps(
        {"end_to_end": {"scored": 886, "end_to_end_seconds": 0.1, "risk": {"low": 7}}}
    )
    assert extract(output) == {"end_to_end.scored": "886", "end_to_end.risk.low": "7"}


def test_json_lines_flatten_lists_by_index() -> None:
    extract = sr.json_lines(r"^$")
    assert extract('{"words": [1042, 1030], "good": [15]}') == {
        "words[0]": "1042",
        "words[1]": "1030",
        "good[0]": "15",
    }


def test_fingerprint_leaves_out_inherent_noise() -> None:
    tables = {
        "tenants": {"count": 1, "columns": {"slug": "aa", "created_at": "bb"}, "rows": "r1"},
        "decisions": {"count": 3, "columns": {"output": "cc"}, "rows": "r2"},
    }
    figures = {"ledger": [["churn.score", 3, 2]], "campaigns": [["high", 1, 4, 4]]}
    output = f"65 tables\nFINGERPRINT {json.dumps(tables)}\nFIGURES {json.dumps(figures)}\n"
    values = sr.fingerprint(output)
    assert values == {
        "ledger churn.score": '["churn.score", 3, 2]',
        "campaigns high 1": '["high", 1, 4, 4]',
        "tenants rows": "1",
        "tenants row digest": "r1",
        "tenants.slug": "aa",
        "decisions rows": "3",
        "decisions row digest": "r2",
        "decisions.output": "cc",
    }


def test_verdicts() -> None:
    same = sr.Run({"a": "1", "b": "2"}, 1.0)
    assert sr.verdict(same, sr.Run({"a": "1", "b": "2"}, 9.0)) == ("same", True)
    text, ok = sr.verdict(same, sr.Run({"a": "1", "b": "3", "c": "4"}, 1.0))
    assert not ok and text == "DIFFERENT (2): b: 2 -> 3; c: (missing) -> 4"
    text, ok = sr.verdict(same, sr.Run({}, 1.0, failed="exit 1: boom"))
    assert not ok and "head exit 1: boom" in text
    text, ok = sr.verdict(sr.Run({}, 1.0, failed="x"), sr.Run({}, 1.0, failed="x"))
    assert not ok and text.startswith("FAILED on both sides")
    assert sr.verdict(sr.Run({}, 1.0), sr.Run({}, 1.0)) == (
        "DIFFERENT: no result values found",
        False,
    )


def test_ignored_keys_are_left_out_of_both_sides_and_counted() -> None:
    base = sr.Run({"decisions.output": "a", "decisions.kind": "k", "x": "1"}, 1.0)
    head = sr.Run({"decisions.output": "b", "decisions.kind": "k", "x": "1", "xy": "2"}, 1.0)
    assert sr.drop_ignored(base, head, ("decisions.output", "xy")) == 2
    assert sr.verdict(base, head) == ("same", True)


def test_every_benchmark_script_is_listed() -> None:
    listed = {b.script or b.name for b in sr.BENCHMARKS}
    scripts = {
        p.stem
        for p in sr.ROOT.joinpath("benchmarks").iterdir()
        if p.suffix == ".py" and not p.stem.startswith("_")
    }
    helpers = {"same_results", "demo_fingerprint", "budget_peer_pymc", "gbstats_reference"}
    assert scripts - helpers <= listed
    assert "reliability" in listed


def test_postgres_runs_name_the_database_or_say_why_not() -> None:
    churn = next(b for b in sr.BENCHMARKS if b.name == "churn")
    pg = sr.on_postgres(churn, "postgresql://postgres@127.0.0.1:5432/scratch")
    assert isinstance(pg, sr.Benchmark)
    assert pg.name == "churn (PostgreSQL)" and pg.script == "churn"
    assert pg.args[-2:] == ["--pg", "postgresql://postgres@127.0.0.1:5432/scratch"]
    assert pg.wipe == "postgresql+psycopg://postgres@127.0.0.1:5432/scratch"
    onboarding = next(b for b in sr.BENCHMARKS if b.name == "onboarding")
    pg = sr.on_postgres(onboarding, "postgresql://h/db")
    assert isinstance(pg, sr.Benchmark) and pg.args[-1] == "postgresql+psycopg://h/db"
    alerts = next(b for b in sr.BENCHMARKS if b.name == "alerts")
    assert isinstance(sr.on_postgres(alerts, "postgresql://h/db"), str)
