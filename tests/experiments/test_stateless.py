from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from scipy import stats as scipy_stats
from typer.testing import CliRunner

from aethercrown.cli import app as cli_app
from aethercrown.experiments.stats.corrections import benjamini_hochberg, holm
from aethercrown.experiments.stats.power import achieved_power, sample_size_per_variant
from tests.conftest import TenantHandle

URL = "/api/v1/experiments/analyze"
ISSUE_EXAMPLE = {
    "engine": "frequentist",
    "metric_type": "mean",
    "difference": "relative",
    "alternative": "two-sided",
    "alpha": 0.05,
    "sequential_tuning": 5000,
    "variants": [
        {"name": "control", "n": 3407, "sum": 1396.87, "sum_squares": 52377.9767},
        {"name": "variant", "n": 3461, "sum": 1689.51, "sum_squares": 55003.4573},
    ],
}


def _welch(body: dict) -> tuple[float, float, float]:  # type: ignore[type-arg]
    (a, b) = body["variants"]
    ma, mb = a["sum"] / a["n"], b["sum"] / b["n"]
    va = (a["sum_squares"] - a["sum"] ** 2 / a["n"]) / (a["n"] - 1)
    vb = (b["sum_squares"] - b["sum"] ** 2 / b["n"]) / (b["n"] - 1)
    var = vb / (ma**2 * b["n"]) + va * mb**2 / (ma**4 * a["n"])
    dof = (vb / b["n"] + va / a["n"]) ** 2 / (
        vb**2 / (b["n"] ** 2 * (b["n"] - 1)) + va**2 / (a["n"] ** 2 * (a["n"] - 1))
    )
    return mb / ma - 1, math.sqrt(var), dof


def test_issue_example_has_the_documented_shape_and_hand_computed_numbers(
    client: TestClient, tenant: TenantHandle
) -> None:
    response = client.post(URL, json=ISSUE_EXAMPLE, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [v["name"] for v in body["variants"]] == ["control", "variant"]
    assert 0 <= body["srm_p_value"] <= 1
    variant = body["variants"][1]
    effect, sd, dof = _welch(ISSUE_EXAMPLE)
    assert variant["effect"] == pytest.approx(effect, rel=1e-12)
    assert variant["stddev"] == pytest.approx(sd, rel=1e-12)
    assert variant["p_value"] == pytest.approx(2 * scipy_stats.t.sf(effect / sd, dof), rel=1e-9)
    width = scipy_stats.t.ppf(0.975, dof) * sd
    assert variant["ci"] == pytest.approx([effect - width, effect + width], rel=1e-9)
    assert "chance_to_win" not in variant or variant["chance_to_win"] is None


def test_bayesian_and_sequential_and_one_sided(client: TestClient, tenant: TenantHandle) -> None:
    effect, sd, _ = _welch(ISSUE_EXAMPLE)
    bayes = client.post(URL, json=ISSUE_EXAMPLE | {"engine": "bayesian"}, headers=tenant.headers)
    variant = bayes.json()["variants"][1]
    assert variant["chance_to_win"] == pytest.approx(scipy_stats.norm.sf(0, effect, sd), rel=1e-9)
    assert variant["risk"] >= 0 and variant["p_value"] is None
    seq = client.post(URL, json=ISSUE_EXAMPLE | {"engine": "sequential"}, headers=tenant.headers)
    freq = client.post(URL, json=ISSUE_EXAMPLE, headers=tenant.headers)
    seq_ci, freq_ci = seq.json()["variants"][1]["ci"], freq.json()["variants"][1]["ci"]
    assert seq_ci[0] < freq_ci[0] and seq_ci[1] > freq_ci[1]  # always-valid is wider
    greater = client.post(
        URL, json=ISSUE_EXAMPLE | {"alternative": "greater"}, headers=tenant.headers
    )
    assert greater.json()["variants"][1]["ci"][1] is None  # unbounded side


def test_bad_analysis_inputs_name_the_problem(client: TestClient, tenant: TenantHandle) -> None:
    def problem(body: dict) -> dict:  # type: ignore[type-arg]
        response = client.post(URL, json=body, headers=tenant.headers)
        assert response.status_code == 422, response.text
        return dict(response.json())

    binomial = {
        "metric_type": "binomial",
        "variants": [{"name": "a", "n": 100, "sum": 10}, {"name": "b", "n": 100, "sum": 12}],
    }
    assert (
        problem(binomial | {"variants": binomial["variants"][:1]})["errors"][0]["field"]
        == "variants"
    )
    over = problem(
        binomial
        | {"variants": [{"name": "a", "n": 10, "sum": 11}, {"name": "b", "n": 10, "sum": 1}]}
    )
    assert "exceed" in over["errors"][0]["msg"] and over["errors"][0]["field"] == "variants.0.sum"
    negative = problem(
        binomial
        | {"variants": [{"name": "a", "n": -5, "sum": 0}, {"name": "b", "n": 10, "sum": 1}]}
    )
    assert "negative" in negative["errors"][0]["msg"]
    small = problem(
        {
            "metric_type": "mean",
            "variants": [
                {"name": "a", "n": 1, "sum": 3, "sum_squares": 9},
                {"name": "b", "n": 10, "sum": 30, "sum_squares": 100},
            ],
        }
    )
    assert small["errors"][0]["field"] == "variants.0.n" and "n ≥ 2" in small["errors"][0]["msg"]
    seq = problem(binomial | {"engine": "sequential", "alternative": "less"})
    assert seq["errors"][0]["field"] == "alternative"


def test_power_calculator_matches_the_closed_form(client: TestClient, tenant: TenantHandle) -> None:
    body = {"metric_type": "binomial", "baseline_mean": 0.1, "mde": 0.1, "daily_users": 1000}
    result = client.post("/api/v1/experiments/power", json=body, headers=tenant.headers).json()
    p1, p2 = 0.1, 0.11
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    per_unit = p2 * (1 - p2) / p1**2 + p1 * (1 - p1) * p2**2 / p1**4
    expected = math.ceil(z**2 * per_unit / 0.1**2)
    assert result["users_per_variant"] == expected
    assert result["days"] == pytest.approx(2 * expected / 1000)
    assert achieved_power(0.1, 0.09, 0.1, expected, binomial=True) == pytest.approx(0.8, abs=1e-3)
    assert sample_size_per_variant(0.1, 0.09, 0.1, binomial=True) == expected
    bad = client.post(
        "/api/v1/experiments/power", json=body | {"baseline_mean": 0.95}, headers=tenant.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "mde"


def test_holm_and_bh_against_hand_computed_values() -> None:
    import numpy as np

    p = np.array([0.01, 0.04, 0.03, 0.20])
    # Holm: sorted 0.01,0.03,0.04,0.20 × 4,3,2,1 → 0.04, 0.09, 0.08→0.09 (monotone), 0.20
    assert holm(p).tolist() == pytest.approx([0.04, 0.09, 0.09, 0.20])
    # BH: sorted × 4/1, 4/2, 4/3, 4/4 → 0.04, 0.06, 0.0533, 0.20 → step-up minimum
    assert benjamini_hochberg(p).tolist() == pytest.approx(
        [0.04, 0.0533333, 0.0533333, 0.20], rel=1e-5
    )


def test_cli_analyze_prints_the_same_result(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(ISSUE_EXAMPLE))
    result = CliRunner().invoke(cli_app, ["experiments", "analyze", "--file", str(path)])
    assert result.exit_code == 0, result.output
    effect, _, _ = _welch(ISSUE_EXAMPLE)
    assert json.loads(result.output)["variants"][1]["effect"] == pytest.approx(effect, rel=1e-12)
    path.write_text(json.dumps(ISSUE_EXAMPLE | {"variants": ISSUE_EXAMPLE["variants"][:1]}))
    bad = CliRunner().invoke(cli_app, ["experiments", "analyze", "--file", str(path)])
    assert bad.exit_code == 2


def test_cli_lists_a_tenants_experiments(
    client: TestClient, tenant: TenantHandle, settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.experiments.conftest import create_experiment

    create_experiment(client, tenant, name="first")
    create_experiment(client, tenant, name="second")
    monkeypatch.setenv("AETHERCROWN_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AETHERCROWN_DATA_DIR", str(settings.data_dir))
    from aethercrown.settings import get_settings

    if hasattr(get_settings, "cache_clear"):
        get_settings.cache_clear()
    result = CliRunner().invoke(cli_app, ["experiments", "list", "--tenant", tenant.slug])
    assert result.exit_code == 0, result.output
    names = [json.loads(line)["name"] for line in result.output.splitlines()]
    assert names == ["first", "second"]
