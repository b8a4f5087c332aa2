"""Where a benchmark run lives: a temp folder, per-context settings, a throw-away PostgreSQL DB.

Everything is created under one temp folder and one dedicated PostgreSQL database, both removed
at exit (even on Ctrl-C), so a run never touches the developer's ``data/`` or the ``test`` DB.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from sqlalchemy import create_engine, text

from ia_continu.config import Settings

PG_ADMIN_URL = os.environ.get(
    "IA_CONTINU_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class BenchEnv:
    root: Path
    pg_databases: dict[str, str] = field(default_factory=dict)  # purpose -> database name
    pg_error: str | None = None
    _cleaned: bool = field(default=False, repr=False)

    @classmethod
    def create(cls, *, keep: bool = False) -> BenchEnv:
        root = Path(tempfile.mkdtemp(prefix="ia-continu-bench-"))
        env = cls(root)
        env.keep = keep
        return env

    # --- PostgreSQL ------------------------------------------------------------------------
    def pg_url(self, purpose: str = "database") -> str | None:
        """A dedicated database for this run and ``purpose`` (created on first use), or None
        if PostgreSQL is unreachable."""
        if purpose in self.pg_databases:
            return self._url_for(self.pg_databases[purpose])
        if self.pg_error is not None:
            return None
        name = f"ia_bench_{uuid.uuid4().hex[:8]}"
        try:
            admin = create_engine(
                PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
            )
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
        except Exception as exc:
            self.pg_error = str(exc).splitlines()[0]
            return None
        self.pg_databases[purpose] = name
        return self._url_for(name)

    @staticmethod
    def _url_for(database: str) -> str:
        base, _, _ = PG_ADMIN_URL.rpartition("/")
        return f"{base}/{database}"

    # --- settings --------------------------------------------------------------------------
    def settings(self, context: str, family: str, *, database_url: str = "") -> Settings:
        data_dir = self.root / context
        data_dir.mkdir(parents=True, exist_ok=True)
        return Settings(
            environment="test",
            data_dir=data_dir,
            database_url=database_url,
            family=family,
            api_key="bench-admin-key-0123456789",
            rate_limit_enabled=False,
            migrate_on_start=True,
        )

    def server_env(self, settings: Settings, **extra: str) -> dict[str, str]:
        """The environment a server process needs to see the same stores as ``settings``."""
        env = dict(os.environ)
        env.update(
            IA_CONTINU_ENVIRONMENT="test",
            IA_CONTINU_DATA_DIR=str(settings.data_dir),
            IA_CONTINU_DATABASE_URL=settings.database_url,
            IA_CONTINU_MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
            IA_CONTINU_MLFLOW_ARTIFACTS_DIR=str(settings.mlflow_artifacts_dir),
            IA_CONTINU_FAMILY=settings.family,
            IA_CONTINU_API_KEY="bench-admin-key-0123456789",
            IA_CONTINU_RATE_LIMIT_ENABLED="false",
            MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri,
            MLFLOW_DISABLE_TELEMETRY="true",
            PYTHONUNBUFFERED="1",
        )
        venv_bin = str(Path(__file__).resolve().parent.parent / ".venv" / "bin")
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        env.update(extra)
        return env

    # --- cleanup ---------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        for database in self.pg_databases.values():
            try:
                admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()
            except Exception as exc:
                print(f"warning: could not drop PostgreSQL database {database}: {exc}")
        if not getattr(self, "keep", False):
            shutil.rmtree(self.root, ignore_errors=True)
