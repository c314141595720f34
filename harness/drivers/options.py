"""A driver's typed settings: ``[target.NAME.options]`` validated against the driver class's ``Options``.

A driver declares its settings as a pydantic model named ``Options`` (a class attribute); the harness
validates the scenario's table against it once, when the load process loads the scenario, and each user
gets the result as ``self.options``. One driver class then serves several delivery modes of a server
instead of one subclass per mode. No Locust here: the config and the tests use it without a load process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

__all__ = ["options_error", "parse_options"]


def _model(model: object) -> type[BaseModel] | None:
    if model is None:
        return None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"the driver's Options must be a pydantic BaseModel subclass, not {model!r}")
    return model


def parse_options(model: object, raw: Mapping[str, Any]) -> BaseModel | None:
    """The driver's settings from the scenario's table (None: the driver declares no ``Options``).

    Raises ValueError (via ``options_error``'s reason) for a table the model refuses."""
    problem = options_error(model, raw)
    if problem is not None:
        field, reason = problem
        raise ValueError(f"options{'.' + field if field else ''}: {reason}")
    checked = _model(model)
    return None if checked is None else checked.model_validate(dict(raw))


def options_error(model: object, raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, reason) of the first problem with ``raw`` under ``model``, or None when it fits.

    Unknown options are refused even when the model itself would ignore them: a misspelt option that is
    silently dropped runs a different experiment from the one the scenario describes."""
    checked = _model(model)
    if checked is None:
        if raw:
            return next(iter(raw)), ("the driver takes no options (it declares no pydantic model 'Options'); "
                                     "remove [options] or give the driver an Options model")
        return None
    known = set(checked.model_fields)
    for key in raw:
        if key not in known:
            return key, f"unknown option; the driver's options: {', '.join(sorted(known)) or '(none)'}"
    try:
        checked.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        return field, str(first["msg"])
    return None
