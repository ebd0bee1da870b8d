"""Console reads are typed (issue 13, item 3): every core function a page passes to
`data.read(function, ...)` says what it returns precisely — dataclasses, models, plain values —
never `Any` or `dict[str, Any]` rows, so a renamed field is caught by the type checker in the page
that reads it (mypy checks app_pages/ and ui/, pyproject.toml).

The pages are parsed with `ast` (not run): each `data.read(...)`'s first argument is resolved
through the page's imports, and the function's return annotation is walked with
`typing.get_type_hints` — through containers, unions, generic classes (`PageResult[PaymentRow]`)
and the fields of the dataclasses it names. `object` (an honest "anything", e.g. a customer's
free-form attributes) is allowed; `Any` is not.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "app_pages").glob("*.py")) + [ROOT / "app.py"]


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name → dotted path ("payments_page" → "core.payments.queries.payments_page")."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
    return names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _resolve(path: str) -> object:
    """`core.payments.queries.payments_page` → the function (the longest importable prefix)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr)
        return target
    raise ImportError(path)


def console_reads() -> Iterator[tuple[str, Callable[..., object]]]:
    """(where, function) for every `data.read(function, ...)` in the pages."""
    for page in PAGES:
        tree = ast.parse(page.read_text(encoding="utf-8"))
        names = _imports(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _dotted(node.func) == "data.read"
                and node.args
                and (name := _dotted(node.args[0]))
            ):
                head, _, rest = name.partition(".")
                full = names.get(head, head) + (f".{rest}" if rest else "")
                function = _resolve(full)
                assert callable(function), full
                yield f"{page.relative_to(ROOT)}:{node.lineno}: {name}", function


def untyped_parts(hint: object, where: str, seen: set[type], parametrised: bool = False) -> Iterator[str]:
    """Where `Any` hides in a return type (a generic class left unparametrised counts as Any)."""
    if hint is typing.Any:
        yield f"{where} is Any"
        return
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if getattr(hint, "__parameters__", ()) and not parametrised:
            yield f"{where} is {hint.__qualname__} without its row type"
        if hint in seen:
            return
        seen.add(hint)
        fields = typing.get_type_hints(hint)
        for field in dataclasses.fields(hint):
            yield from untyped_parts(fields[field.name], f"{hint.__qualname__}.{field.name}", seen)
        return
    origin = typing.get_origin(hint)
    if origin is not None:
        for arg in typing.get_args(hint):
            yield from untyped_parts(arg, where, seen)
        if isinstance(origin, type) and dataclasses.is_dataclass(origin):
            # A generic dataclass (PageResult[Row]): its other fields are checked once, unparametrised.
            yield from untyped_parts(origin, where, seen, parametrised=True)
        return
    if isinstance(hint, types.UnionType):
        for arg in typing.get_args(hint):
            yield from untyped_parts(arg, where, seen)


def test_the_pages_read_through_data_read():
    reads = list(console_reads())
    assert len(reads) >= 40, reads  # the parser still finds the pages' reads


def test_every_console_read_returns_a_precise_type():
    problems = []
    for where, function in console_reads():
        hints = typing.get_type_hints(function)
        if "return" not in hints:
            problems.append(f"{where}: no return annotation")
            continue
        for part in untyped_parts(hints["return"], "the return type", set()):
            problems.append(f"{where}: {part}")
    assert not problems, "stringly-typed console reads:\n" + "\n".join(sorted(set(problems)))


_Row = typing.TypeVar("_Row")


@dataclasses.dataclass(frozen=True)
class _Loose:
    name: str
    extra: dict[str, typing.Any]


@dataclasses.dataclass(frozen=True)
class _Page(typing.Generic[_Row]):
    rows: list[_Row]
    total: int


def _rows() -> list[dict[str, typing.Any]]:
    return []


def _loose() -> list[_Loose]:
    return []


def _bare_page() -> _Page:  # type: ignore[type-arg]
    return _Page([], 0)


def _fine() -> tuple[_Page[_Loose], dict[str, int] | None, object]:
    return _Page([], 0), None, None


def _problems(function: Callable[..., object]) -> list[str]:
    return list(untyped_parts(typing.get_type_hints(function)["return"], "r", set()))


def test_the_check_finds_any_in_rows_in_fields_and_in_bare_pages():
    assert _problems(_rows) == ["r is Any"]
    assert _problems(_loose) == ["_Loose.extra is Any"]
    assert _problems(_bare_page) == ["r is _Page without its row type"]
    assert _problems(_fine) == ["_Loose.extra is Any"]  # only the loose field, once
