"""The reliability suite's table (benchmarks/reliability; the suite itself is run by hand)."""

from __future__ import annotations

from benchmarks.reliability.common import Row, format_table


def test_the_table_is_markdown_with_one_line_per_row_and_escaped_cells() -> None:
    table = format_table(
        [
            Row("1 authz matrix", "sqlite", "every operation", 0, "leaks 0"),
            Row("4 load", "postgresql", "a | b", 2, "p99 3 ms\n5xx 2"),
            Row("5 schema fuzz", "sqlite", "not present", 0, "not present", skipped=True),
        ]
    )
    lines = table.splitlines()
    assert lines[0] == "| part | backend | what was done | failures | figure |"
    assert lines[1] == "| --- | --- | --- | --- | --- |"
    assert lines[2] == "| 1 authz matrix | sqlite | every operation | 0 | leaks 0 |"
    assert lines[3] == "| 4 load | postgresql | a \\| b | 2 | p99 3 ms 5xx 2 |"
    assert lines[4] == "| 5 schema fuzz | sqlite | not present | skipped | not present |"
    assert len(lines) == 5
