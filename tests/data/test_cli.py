"""``aethercrown import`` / ``aethercrown export`` against the test database."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aethercrown.cli import app
from aethercrown.data import formats
from aethercrown.data.kinds import KINDS
from aethercrown.settings import Settings, get_settings
from tests.conftest import TenantHandle
from tests.data.conftest import typed

Run = Callable[..., Result]


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, [*args, "--no-progress"] if args[0] == "import" else list(args))

    yield invoke
    get_settings.cache_clear()


def write_csv(path: Path, kind: str, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(formats.csv_chunks(KINDS[kind].fields, rows)), encoding="utf-8")
    return path


def parse_csv(text: str, kind: str) -> list[dict[str, Any]]:
    return [row for _, row in formats.iter_csv(io.StringIO(text), KINDS[kind].fields)]


def summary(result: Result) -> dict[str, int]:
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_every_kind_round_trips_through_csv_and_reimport_changes_nothing(
    run: Run, tenant: TenantHandle, rows: dict[str, Any], tmp_path: Path
) -> None:
    for kind in KINDS:
        path = write_csv(tmp_path / f"{kind}.csv", kind, rows[kind])
        result = run("import", "--tenant", "acme", "--kind", kind, str(path), "--batch-size", "2")
        assert result.exit_code == 0, result.output
        n = len(rows[kind])
        assert summary(result) | {"batches": 0} == {
            "received": n,
            "inserted": n,
            "updated": 0,
            "unchanged": 0,
            "batches": 0,
        }
    for kind in KINDS:
        exported = run("export", "--tenant", "acme", "--kind", kind)
        assert exported.exit_code == 0, exported.output
        assert typed(kind, parse_csv(exported.stdout, kind)) == typed(kind, rows[kind]), kind
        path = tmp_path / f"{kind}.csv"
        again = run("import", "--tenant", "acme", "--kind", kind, str(path))
        assert summary(again)["unchanged"] == len(rows[kind])
        assert summary(again)["inserted"] == summary(again)["updated"] == 0


def test_ndjson_import_and_export_to_a_file_with_filters(
    run: Run, client: TestClient, tenant: TenantHandle, rows: dict[str, Any], tmp_path: Path
) -> None:
    for kind in ("customers", "activity"):
        path = tmp_path / f"{kind}.ndjson"
        path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows[kind]))
        result = run("import", "--tenant", tenant.id, "--kind", kind, str(path))
        assert result.exit_code == 0, result.output
    out = tmp_path / "out.csv"
    result = run(
        "export",
        "--tenant",
        "acme",
        "--kind",
        "activity",
        "--out",
        str(out),
        "--customer",
        "c2",
        "--where",
        "feature=exports",
    )
    assert result.exit_code == 0, result.output
    assert [r["external_id"] for r in csv.DictReader(out.open())] == ["a4"]
    listed = client.get(
        "/api/v1/data/activity",
        params={"customer": "c2", "feature": "exports"},
        headers=tenant.headers,
    ).json()["items"]
    assert typed("activity", listed) == typed("activity", parse_csv(out.read_text(), "activity"))
    bad = run("export", "--tenant", "acme", "--kind", "activity", "--where", "colour=red")
    assert bad.exit_code != 0
    bad = run("export", "--tenant", "acme", "--kind", "activity", "--since", "soon")
    assert bad.exit_code != 0


def test_a_malformed_csv_names_lines_and_fields_and_writes_nothing_of_its_batch(
    run: Run, tenant: TenantHandle, rows: dict[str, Any], tmp_path: Path
) -> None:
    write_csv(tmp_path / "c.csv", "customers", rows["customers"])
    assert (
        run("import", "--tenant", "acme", "--kind", "customers", str(tmp_path / "c.csv")).exit_code
        == 0
    )
    header = ",".join(KINDS["subscriptions"].fields)
    good = "s1,c1,pro,100,USD,month,1,2025-01-01T00:00:00Z,,,,"
    text = "\n".join(
        [
            header,  # line 1
            good,  # lines 2–4: batch 1, committed
            good.replace("s1,", "s2,"),
            good.replace("s1,", "s2b,"),
            good.replace("s1,", "s3,").replace(",100,", ",-100,"),  # line 5: bad amount
            "s4,c1,pro",  # line 6: too few fields
            good.replace("s1,c1", "s5,ghost").replace("month", "fortnight"),  # line 7
            good.replace("s1,", "s6,"),  # line 8: good, but its batch is rejected
        ]
    )
    path = tmp_path / "subs.csv"
    path.write_text(text + "\n")
    result = run(
        "import", "--tenant", "acme", "--kind", "subscriptions", str(path), "--batch-size", "3"
    )
    assert result.exit_code == 1
    assert "line 5: amount:" in result.stderr
    assert "line 6: line: line 6 has 3 fields" in result.stderr
    assert "line 7: interval:" in result.stderr and "line 7: customer:" in result.stderr
    assert "line 8" not in result.stderr
    # Batch 2 (lines 5–7) was rejected whole and the import stopped there.
    assert summary(result)["inserted"] == 3
    exported = run("export", "--tenant", "acme", "--kind", "subscriptions").stdout
    assert [r["external_id"] for r in parse_csv(exported, "subscriptions")] == ["s1", "s2", "s2b"]


def test_bad_files_and_arguments_fail_cleanly(
    run: Run, tenant: TenantHandle, tmp_path: Path
) -> None:
    unknown = tmp_path / "c.csv"
    unknown.write_text("external_id,name,signup_date,colour\nc1,A,2025-01-01,red\n")
    result = run("import", "--tenant", "acme", "--kind", "customers", str(unknown))
    assert result.exit_code == 1 and "line 1: colour:" in result.stderr
    broken = tmp_path / "c.ndjson"
    broken.write_text('{"external_id": "c1", "name": "A", "signup_date": "2025-01-01"}\n{oops\n')
    result = run("import", "--tenant", "acme", "--kind", "customers", str(broken))
    assert result.exit_code == 1 and "line 2: line: line 2 is not valid JSON" in result.stderr
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"external_id,name,signup_date\n\xff\xfe,x,2025-01-01\n")
    result = run("import", "--tenant", "acme", "--kind", "customers", str(binary))
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
    assert run("import", "--tenant", "nobody", "--kind", "customers", str(unknown)).exit_code == 1
    assert run("import", "--tenant", "acme", "--kind", "invoices", str(unknown)).exit_code == 2
    other = tmp_path / "c.txt"
    other.write_text("x")
    assert run("import", "--tenant", "acme", "--kind", "customers", str(other)).exit_code == 2
    big = run(
        "import", "--tenant", "acme", "--kind", "customers", str(unknown), "--batch-size", "1000000"
    )
    assert big.exit_code == 2
    assert run("export", "--tenant", "acme", "--kind", "customers").stdout.count("\n") == 1
