"""The scenario reference, generated from the scenario model itself: every key, its type, its default and
what it means. `dnsprobe schema scenario --markdown` prints it; the README carries the same table between
markers, and a test keeps the two identical."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from dnsprobe.scenario import Scenario

BEGIN = "<!-- scenario-reference:begin (generated: dnsprobe schema scenario --markdown) -->"
END = "<!-- scenario-reference:end -->"


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in get_args(annotation)) if _is_union(annotation) else False


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (typing.Union, types.UnionType)


def type_words(annotation: Any) -> str:
    """A type as a scenario author reads it: integer, number, string, list of strings, one of "a", "b"."""
    if annotation is None or annotation is type(None):
        return "none"
    origin = get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(annotation))
    if _is_union(annotation):
        words = [type_words(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(words)
    if origin is list:
        (item,) = get_args(annotation)
        model = _model_of(item)
        return "array of tables" if model else f"list of {type_words(item)}s".replace("ys", "ies")
    if origin is dict:
        _key, value = get_args(annotation)
        model = _model_of(value)
        return f"table of {'tables' if model else type_words(value) + 's'}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return {int: "integer", float: "number", str: "string", bool: "boolean"}.get(annotation, str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel) or (
        isinstance(value, list) and value and isinstance(value[0], BaseModel)
    ):
        return f"{len(value)} entry" if isinstance(value, list) else ""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if value else '""'
    if isinstance(value, list) and not value:
        return "[]"
    if isinstance(value, dict) and not value:
        return "{}"
    return repr(value).replace("'", '"')


def _bounds(info: FieldInfo) -> str:
    words = []
    for meta in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                integral = isinstance(bound, int) or float(bound).is_integer()
                shown = f"{int(bound):_}" if integral else f"{bound:g}"
                words.append(f"{sign} {shown}")
    return ", ".join(words)


def rows(
    model: type[BaseModel] = Scenario, prefix: str = "", seen: dict[type[BaseModel], str] | None = None
) -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every key, tables before their keys; a table that appears twice
    (the fault rules) is spelled out once and referred to after."""
    seen = {} if seen is None else seen
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        key = f"{prefix}{name}"
        annotation = info.annotation
        nested = _model_of(annotation)
        meaning = (info.description or (nested.__doc__ or "" if nested else "")).strip()
        meaning = " ".join(meaning.split("\n\n")[0].split())
        bounds = _bounds(info)
        if bounds:
            meaning = f"{meaning} ({bounds})" if meaning else f"({bounds})"
        if nested is not None and nested in seen:
            meaning = f"{meaning}; the same keys as `{seen[nested]}`".lstrip("; ")
        yield key, type_words(annotation), _default(info), meaning
        if nested is not None and nested not in seen:
            seen[nested] = key
            if _is_list(annotation):
                child = f"{key}[]."
            elif get_origin(annotation) is dict:
                child = f"{key}.<name>."
            else:
                child = f"{key}."
            yield from rows(nested, child, seen)


def markdown_reference() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, meaning in rows():
        cells = [f"`{key}`", kind, f"`{default}`" if default not in ("", "required") else default, meaning]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"
