"""Forecast accuracy and interval coverage, rolling origin, over many demo companies.

For each seed the demo company is simulated (``aethercrown.simulate``), its monthly series is
computed by the analytics code (``metrics.revenue_series`` over the generated subscriptions, the
figures the dashboard shows), and from every month-end inside the company's window the
forecaster is fitted on the complete months so far — as the dashboard would have been then —
and its 1…H-month-ahead forecasts are scored against what happened: MAPE of the point forecast
and the share of actuals inside the stated interval (coverage), per horizon, pooled over seeds.
Origins whose interval is unknown (too little history) are counted apart.

    .venv/bin/python benchmarks/forecast.py [--seeds 20] [--customers 2000] [--months 18]
                                            [--horizon 6] [--level 0.8]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from aethercrown.analytics import forecast as fc
from aethercrown.analytics import metrics
from aethercrown.simulate.config import SimConfig
from aethercrown.simulate.generator import generate

END = datetime(2026, 11, 1, tzinfo=UTC)


def _instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


def monthly_series(seed: int, customers: int, months: int) -> tuple[list[dict[str, Any]], str]:
    """The dashboard's monthly series of one simulated company, and its window's first month."""
    config = SimConfig(customers=customers, months=months, seed=seed, end=END)
    truth = generate(config).truth
    subscriptions = [
        metrics.SubscriptionRecord(
            customer=s["customer"],
            plan=s["plan"],
            amount=s["amount"],
            interval=s["interval"],
            started_at=_instant(s["started_at"]) or END,
            # The truth carries pending cancellations' future ends; the data has none yet.
            ended_at=end if (end := _instant(s.get("ended_at"))) and end < END else None,
            quantity=s.get("quantity", 1),
            discount_percent=s.get("discount_percent", 0.0),
            discount_amount=s.get("discount_amount", 0),
            trial_end=_instant(s.get("trial_end")),
        )
        for s in truth.subscriptions
    ]
    series = metrics.revenue_series(metrics.RevenueInputs(subscriptions), END)
    current = metrics.month_of(END)
    return [row for row in series if row["month"] < current], metrics.month_of(truth.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--horizon", type=int, default=6)
    parser.add_argument("--level", type=float, default=0.8)
    args = parser.parse_args()

    names = {"mrr": "MRR", "customers": "paying customers"}
    # name -> horizon -> [absolute percentage errors], [inside flags], unknown-interval count
    ape: dict[str, dict[int, list[float]]] = {n: {} for n in names}
    inside: dict[str, dict[int, list[bool]]] = {n: {} for n in names}
    unknown: dict[str, dict[int, int]] = {n: {} for n in names}
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        rows, window_start = monthly_series(seed, args.customers, args.months)
        for name in names:
            values = [float(r[name]) for r in rows]
            first_origin = next(i for i, r in enumerate(rows) if r["month"] >= window_start)
            for t in range(max(first_origin, 1), len(values)):
                predicted = fc.damped_trend(values[:t], args.horizon, args.level)
                for h in range(1, min(args.horizon, len(values) - t) + 1):
                    actual = values[t + h - 1]
                    if actual:
                        ape[name].setdefault(h, []).append(
                            abs(predicted.mean[h - 1] - actual) / abs(actual)
                        )
                    low, high = predicted.lower[h - 1], predicted.upper[h - 1]
                    if low is None or high is None:
                        unknown[name][h] = unknown[name].get(h, 0) + 1
                    else:
                        inside[name].setdefault(h, []).append(low <= actual <= high)
    elapsed = time.perf_counter() - started

    print(
        f"{args.seeds} demo companies (seeds {args.first_seed}–{args.first_seed + args.seeds - 1},"
        f" {args.customers} customers, {args.months}-month window ending {END:%Y-%m-%d}), "
        f"origins at every month-end of the window, {int(args.level * 100)} % intervals; "
        f"{elapsed:.1f} s"
    )
    for name, label in names.items():
        print(f"\n{label}")
        print("| horizon | MAPE | coverage | scored | no interval |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        all_inside: list[bool] = []
        for h in range(1, args.horizon + 1):
            errors = ape[name].get(h, [])
            flags = inside[name].get(h, [])
            all_inside += flags
            mape = f"{100 * sum(errors) / len(errors):.1f} %" if errors else "–"
            coverage = f"{100 * sum(flags) / len(flags):.1f} %" if flags else "–"
            print(f"| {h} | {mape} | {coverage} | {len(flags)} | {unknown[name].get(h, 0)} |")
        if all_inside:
            print(
                f"| all | | {100 * sum(all_inside) / len(all_inside):.1f} % | {len(all_inside)} | |"
            )


if __name__ == "__main__":
    main()
