"""Write ``examples/data/churn.csv``: 3,000 subscribers of the ``churn`` example model.

Deterministic (fixed seed), so the file in the repository is what this script writes:
``.venv/bin/python examples/make_data.py``. The relationship is the usual one: month-to-month
contracts, high bills, many support calls and a short tenure make a customer leave; long
contracts keep them. Noise keeps it a learning problem (a good model gets about 80 % right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROWS = 3000
SEED = 20240601
OUT = Path(__file__).resolve().parent / "data" / "churn.csv"


def make(rows: int = ROWS, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    contract = rng.choice(["monthly", "one_year", "two_year"], rows, p=[0.55, 0.25, 0.2])
    tenure = np.where(contract == "monthly", rng.integers(0, 48, rows), rng.integers(6, 120, rows))
    monthly = np.round(rng.normal(65, 25, rows).clip(15, 200), 2)
    calls = rng.poisson(np.where(monthly > 90, 2.5, 1.2))
    paperless = rng.random(rows) < 0.6
    score = (
        -1.2
        + 1.6 * (contract == "monthly")
        - 1.2 * (contract == "two_year")
        - 0.04 * tenure
        + 0.025 * (monthly - 65)
        + 0.45 * calls
        + 0.3 * paperless
    )
    left = rng.random(rows) < 1 / (1 + np.exp(-score))
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "contract": contract,
            "support_calls": calls,
            "paperless_billing": np.where(paperless, "true", "false"),
            "churned": np.where(left, "left", "stayed"),
        }
    )


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frame = make()
    frame.to_csv(OUT, index=False)
    print(f"{len(frame)} rows, {frame['churned'].eq('left').mean():.0%} left: {OUT}")
