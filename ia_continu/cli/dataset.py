"""``ia-continu dataset import FILE``: send a labelled file to the API as a model's dataset.

The file is streamed as the request body (``POST /models/{model}/datasets``), never read
whole here; the API checks every row and stores all of them or none. Only httpx and the
settings are imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ia_continu.cli.api import ApiKey, ApiUrl, connection, detail, fail

dataset_app = typer.Typer(no_args_is_help=True, help="Labelled data for a model (import).")

CONTENT_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "json": "application/x-ndjson",  # the API also takes a top-level JSON array
}
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
}
IMPORT_TIMEOUT_SECONDS = 3600.0  # the API answers once every row is checked and stored


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")


def file_format(path: Path, given: str | None) -> str:
    if given is not None:
        if given not in CONTENT_TYPES:
            fail(f"--format must be one of {', '.join(CONTENT_TYPES)}, not {given!r}", 2)
        return given
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        fail(f"cannot tell the format of {path.name}: pass --format csv|parquet|json", 2)
    return fmt


@dataset_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    model: Annotated[
        str | None, typer.Option("--model", help="declared model name; default: the served one")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, parquet or json; default: from the file's suffix"),
    ] = None,
    allow_duplicate: Annotated[
        bool, typer.Option("--allow-duplicate", help="import content the model already has")
    ] = False,
    api_url: ApiUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Import FILE (CSV with a header, Parquet, JSON Lines) as one dataset of the model."""
    import httpx

    kind = file_format(file, fmt)
    url, key = connection(api_url, api_key)
    path = f"/models/{model}/datasets" if model else "/datasets"
    params: dict[str, str] = {"name": file.name}
    if allow_duplicate:
        params["allow_duplicate"] = "true"
    try:
        with file.open("rb") as body:
            response = httpx.post(
                url + path,
                content=body,  # streamed from the file as it is sent
                params=params,
                headers={"X-API-Key": key, "Content-Type": CONTENT_TYPES[kind]},
                timeout=httpx.Timeout(30.0, read=IMPORT_TIMEOUT_SECONDS),
            )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the API at {url}: {exc}")
    if response.status_code != 201:
        fail(f"the API answered {response.status_code}: {detail(response)}")
    result = response.json()
    typer.echo(
        f"imported {result['rows']} rows of {file.name} into {result['model']} "
        f"as dataset {result['generation_id']}"
    )
