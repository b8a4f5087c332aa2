"""Starts of the app with its champion loaded from the served form against from MLflow, the
same champion, interleaved in one run (``bench.startup``, ``bench.declared_form``).

A start from MLflow writes the form back (``ia_continu.serve.forms``), so it is deleted
before each of those; the start after it then loads from the form again.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from sqlalchemy import Engine, delete

from bench import serving
from ia_continu.store.tables import ServingFormRecord


def form_and_mlflow(
    server_env: dict[str, str], engine: Engine, body: dict, *, log_dir: Path, starts: int
) -> tuple[list[dict], list[dict]]:
    """``serving.first_answer`` of ``starts`` starts of each kind: (from the form, from
    MLflow); raises if a start answered with the fallback instead of the model."""
    lean: list[dict] = []
    baseline: list[dict] = []
    for i in range(starts):  # interleaved: the machine's drift hits both alike
        lean.append(serving.first_answer(server_env, body, log_dir=log_dir, name=f"start-form-{i}"))
        with engine.begin() as conn:
            conn.execute(delete(ServingFormRecord))
        baseline.append(
            serving.first_answer(server_env, body, log_dir=log_dir, name=f"start-mlflow-{i}")
        )
    for runs in (lean, baseline):
        if any(r["served_by"] != "ml" for r in runs):
            raise RuntimeError(f"a start did not answer with the model: {runs}")
    return lean, baseline


def report(what: str, lean: list[dict], baseline: list[dict]) -> None:
    """Medians of each kind and their ratios."""
    medians = []
    for label, runs in (("from its served form", lean), ("from MLflow (baseline)", baseline)):
        seconds = statistics.median(r["seconds"] for r in runs)
        rss = statistics.median(r["rss_mb"] for r in runs)
        medians.append((seconds, rss))
        each = ", ".join(f"{r['seconds']:.2f} s / {r['rss_mb']:.0f} MB" for r in runs)
        print(f"{what} {label}: first answer {seconds:.2f} s, RSS {rss:.0f} MB ({each})")
    (form_s, form_mb), (ml_s, ml_mb) = medians
    print(f"  first answer {ml_s / form_s:.2f}x sooner, RSS {ml_mb / form_mb:.2f}x smaller")
