"""``ia-continu``: the command line. Each sub-command lives in ``ia_continu/cli/``.

Kept light on imports: a command imports the heavy stack (mlflow, prefect, evidently) only
when it runs.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="ia-continu: continuous ML on one machine or many.",
)


@app.callback()
def main() -> None:
    """Settings come from IA_CONTINU_* variables (and .env): see README.md."""


@app.command()
def migrate() -> None:
    """Apply the database migrations (the API also does it on start)."""
    from ia_continu.config import get_settings
    from ia_continu.store import migrate as migrations
    from ia_continu.store.engine import make_engine

    settings = get_settings()
    engine = make_engine(settings.database_url, connect_retries=10)
    migrations.upgrade(engine)
    typer.echo(f"schema at head on {engine.url.render_as_string(hide_password=True)}")


def _register_subcommands() -> None:
    import importlib
    import pkgutil

    import ia_continu.cli as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):  # __main__ runs the app when imported
            continue
        mod = importlib.import_module(f"ia_continu.cli.{module.name}")
        register = getattr(mod, "register", None)
        if register is not None:
            register(app)


_register_subcommands()

if __name__ == "__main__":
    app()
