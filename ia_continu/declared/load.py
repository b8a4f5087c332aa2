"""Load every model declaration: the built-ins shipped with the package plus a user folder.

:func:`load_declarations` reads ``ia_continu/declared/builtin/*.toml`` and then every
``*.toml`` of the folder the caller passes (a setting), checks each file completely, checks
that no two files declare the same name, and either returns ``{name: Declaration}`` or raises
one :class:`DeclarationError` that lists every problem of every file, so a user fixes a
folder in one round instead of one error per restart.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from pathlib import Path

from ia_continu.declared.errors import DeclarationError, Problem
from ia_continu.declared.imports import normalise_prefixes
from ia_continu.declared.schema import Declaration, parse_declaration

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
_PACKAGE_ROOT = BUILTIN_DIR.parents[2]  # the folder holding ia_continu/


def _shown(path: Path, builtin: bool) -> str:
    """Built-ins as ia_continu/declared/builtin/x.toml; user files as the caller wrote them."""
    if builtin:
        try:
            return path.relative_to(_PACKAGE_ROOT).as_posix()
        except ValueError:
            return path.as_posix()
    return str(path)


def load_file(
    path: Path, extra_prefixes: Iterable[str] = (), *, builtin: bool = False
) -> Declaration:
    """One declaration file; raise DeclarationError listing its problems."""
    shown = _shown(path, builtin)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DeclarationError(
            [Problem(shown, "", f"cannot be read: {exc.strerror or exc}")]
        ) from None
    except UnicodeDecodeError:
        raise DeclarationError([Problem(shown, "", "is not UTF-8 text")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError([Problem(shown, "", f"is not valid TOML: {exc}")]) from None
    # A built-in's classes are checked by the package's tests, not at every start (see
    # parse_declaration): serving the built-in models needs no scikit-learn.
    return parse_declaration(
        data,
        source=shown,
        prefixes=normalise_prefixes(extra_prefixes),
        check_estimator=not builtin,
    )


def load_declarations(
    folder: Path | str | None = None,
    *,
    extra_prefixes: Iterable[str] = (),
    include_builtin: bool = True,
) -> dict[str, Declaration]:
    """Every declaration by name: built-ins, then ``folder``'s ``*.toml`` (sorted by name).

    ``extra_prefixes``: module prefixes estimator classes may be imported from besides
    ``sklearn.`` (configured by the operator, never by a declaration file).
    """
    prefixes = tuple(extra_prefixes)
    files: list[tuple[Path, bool]] = []
    problems: list[Problem] = []
    if include_builtin:
        files += [(p, True) for p in sorted(BUILTIN_DIR.glob("*.toml"))]
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            problems.append(Problem(str(folder), "", "is not a folder of declarations"))
        else:
            files += [(p, False) for p in sorted(folder.glob("*.toml")) if p.is_file()]
    found: dict[str, Declaration] = {}
    for path, builtin in files:
        try:
            declaration = load_file(path, prefixes, builtin=builtin)
        except DeclarationError as exc:
            problems.extend(exc.problems)
            continue
        other = found.get(declaration.name)
        if other is not None:
            problems.append(
                Problem(
                    declaration.source,
                    "name",
                    f"{declaration.name!r} is already declared by {other.source}",
                )
            )
            continue
        found[declaration.name] = declaration
    if problems:
        raise DeclarationError(problems)
    return found
