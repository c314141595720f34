"""``harness new-target NAME``: a folder with a target definition, a driver and a real stand-in server.

The scaffold is a package (``NAME/``: ``server.py``, ``driver.py``, ``scenario.toml``, ``README.md``) that
works as written: its smoke run (``harness run NAME/scenario.toml --expect``, from the folder holding it)
starts the stand-in server, drives two users through the fault proxy, silences one and judges the run.
The user then replaces the server and adapts the driver. A typer command, registered in ``harness.cli``.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
from pathlib import Path
from string import Template
from typing import Annotated

import typer

from harness import scaffold_templates as templates

__all__ = ["new_target", "scaffold", "class_name"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def class_name(name: str) -> str:
    """``my_chat`` → ``MyChat`` (the driver class is ``MyChatUser``)."""
    return "".join(part.capitalize() for part in name.split("_") if part)


def scaffold(name: str, where: Path) -> list[Path]:
    """Write the scaffold for ``name`` under ``where / name``; returns the files written.

    Raises ValueError for a name that cannot be a Python package, FileExistsError for an existing folder
    (nothing is overwritten)."""
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(f"'{name}' cannot be a Python package name: use lower case letters, digits and _, "
                         "starting with a letter (the driver is imported as NAME.driver)")
    if where.exists() and not where.is_dir():
        raise ValueError(f"--dir {where} is a file, not a folder")
    folder = where / name
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; nothing was written")
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise ValueError(f"'{name}' is already an importable module here (the standard library or an installed "
                         "package): NAME.driver would import that instead; choose another name")
    values = {"name": name, "cls": class_name(name)}
    files = {"__init__.py": templates.INIT, "server.py": templates.SERVER, "driver.py": templates.DRIVER,
             "scenario.toml": templates.SCENARIO, "README.md": templates.README}
    folder.mkdir(parents=True)
    written = []
    for file_name, text in files.items():
        path = folder / file_name
        path.write_text(Template(text).substitute(values), encoding="utf-8")
        written.append(path)
    return written


def new_target(
    name: Annotated[str, typer.Argument(help="Target name; also the package folder's name (e.g. my_chat)")],
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the NAME/ folder")] = Path("."),
) -> None:
    """Scaffold a target: NAME/ with a stand-in server, a driver, a scenario, and a smoke run that works."""
    try:
        written = scaffold(name, directory)
    except (ValueError, FileExistsError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for path in written:
        typer.echo(f"wrote {path}")
    where = directory.resolve()
    typer.echo(f"\nSmoke run (from {where}):\n    harness run {name}/scenario.toml --expect\n"
               f"Then replace {name}/server.py with your server (or point [target.{name}] command at it) and adapt "
               f"{name}/driver.py to its protocol (docs/custom-target.md).")
