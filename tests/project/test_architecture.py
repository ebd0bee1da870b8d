"""The layering in docs/DESIGN.md, checked by reading the source with `ast`.

Dependencies point down: receiver and console → booking/payments → lessons → jobs → models, db,
clock, config. A lazy import (one inside a function) to dodge a cycle means the design has a knot, so
core imports core only at module level. Nothing here imports the modules it checks: it parses them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository
    line: int
    source: str  # the statement as written, e.g. "from core.booking import can_manage_lesson"
    modules: tuple[
        str, ...
    ]  # every dotted name it may load: "core.booking", "core.booking.can_manage_lesson"
    in_function: bool
    type_checking_only: bool

    def where(self) -> str:
        return f"{self.path}:{self.line}: {self.source}"

    def touches(self, *prefixes: str) -> bool:
        return any(m == p or m.startswith(p + ".") for m in self.modules for p in prefixes)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_in(path: Path) -> list[Import]:
    relative = path.relative_to(ROOT)
    return list(
        parse_imports(
            path.read_text(encoding="utf-8"),
            str(relative),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
    )


def parse_imports(text: str, label: str, name: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import statement in `text` (the source of module `name`), relative ones resolved."""
    tree = ast.parse(text, filename=label)
    package = name if is_package else name.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                modules = tuple(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                modules = (target, *(f"{target}.{alias.name}" for alias in child.names))
            else:
                yield from visit(
                    child,
                    in_function or isinstance(child, FUNCTION_NODES),
                    type_checking or (isinstance(child, ast.If) and is_type_checking(child.test)),
                )
                continue
            source = (ast.get_source_segment(text, child) or "").replace("\n", " ")
            yield Import(label, child.lineno, " ".join(source.split()), modules, in_function, type_checking)

    yield from visit(tree, False, False)


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def all_imports(*folders: str) -> list[Import]:
    return [imp for path in python_files(*folders) for imp in imports_in(path)]


def forbid(offenders: list[Import], rule: str) -> None:
    if offenders:
        pytest.fail(rule + ":\n" + "\n".join("  " + imp.where() for imp in offenders), pytrace=False)


def lazy_core_imports(imports: list[Import]) -> list[Import]:
    return [imp for imp in imports if imp.in_function and not imp.type_checking_only and imp.touches("core")]


# --- the walker itself: the rules below must not pass because it sees nothing -------------------


def test_the_walker_sees_the_modules_it_is_meant_to_check():
    files = {module_name(p) for p in python_files("core")}
    assert {"core.lessons", "core.jobs", "core.booking", "core.calendars", "core.payments.webhooks"} <= files
    assert any(imp.touches("core.models") for imp in all_imports("core"))


def test_the_walker_finds_nested_relative_and_type_checking_imports():
    source = """
from typing import TYPE_CHECKING
from . import local
if TYPE_CHECKING:
    from core.booking import Slot

def outer():
    def inner():
        import core.payments.links
    return lambda: inner

class Thing:
    def method(self):
        from ..booking import book_slot
"""
    found = {imp.line: imp for imp in parse_imports(source, "core/calendars/x.py", "core.calendars.x")}
    assert found[3].modules == ("core.calendars", "core.calendars.local") and not found[3].in_function
    assert found[5].type_checking_only and not found[5].in_function
    assert found[9].in_function and found[9].touches("core.payments")
    assert (
        found[14].in_function and found[14].touches("core.booking") and found[14].source.startswith("from ..")
    )
    assert [imp.line for imp in lazy_core_imports(list(found.values()))] == [9, 14]


# --- the rules ------------------------------------------------------------------------------------


def test_core_imports_core_modules_only_at_module_level():
    forbid(
        lazy_core_imports(all_imports("core")),
        "core modules imported inside a function (move them to the top)",
    )


def test_the_console_and_the_receiver_import_core_only_at_module_level():
    imports = all_imports("app_pages", "ui", "receiver") + imports_in(ROOT / "app.py")
    forbid(lazy_core_imports(imports), "core modules imported inside a function (move them to the top)")


def test_core_imports_no_web_framework():
    frameworks = ("streamlit", "fastapi", "starlette", "uvicorn")
    offenders = [imp for imp in all_imports("core") if imp.touches(*frameworks)]
    forbid(offenders, "core imports a web framework")


def test_lessons_imports_neither_booking_nor_payments():
    offenders = [
        imp
        for imp in imports_in(ROOT / "core" / "lessons.py")
        if imp.touches("core.booking", "core.payments")
    ]
    forbid(offenders, "core/lessons.py imports a layer above it")


def test_jobs_imports_nothing_that_runs_jobs():
    above = ("core.lessons", "core.booking", "core.payments", "core.chat")
    offenders = [imp for imp in imports_in(ROOT / "core" / "jobs.py") if imp.touches(*above)]
    forbid(offenders, "core/jobs.py imports a layer above it")


def test_receiver_and_console_pages_build_no_queries():
    offenders = [
        imp
        for imp in all_imports("receiver", "app_pages")
        if imp.touches("sqlalchemy.select", "sqlmodel.select", "sqlalchemy.sql.select")
    ]
    forbid(offenders, "receiver/ and app_pages/ query through core, not with select()")


# --- HTTP lives in the receiver (issue 13, item 5) -------------------------------------------------


def error_classes(*folders: str) -> dict[str, tuple[str, list[str]]]:
    """Every class in `folders`: name -> (where, names of its bases)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for path in python_files(*folders):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                bases = [
                    b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else ""
                    for b in node.bases
                ]
                found[node.name] = (f"{path.relative_to(ROOT)}:{node.lineno}", bases)
    return found


def lesplanner_errors(classes: dict[str, tuple[str, list[str]]]) -> dict[str, tuple[str, list[str]]]:
    def descends(name: str, seen: frozenset = frozenset()) -> bool:
        if name == "LesplannerError":
            return True
        if name in seen or name not in classes:
            return False
        return any(descends(base, seen | {name}) for base in classes[name][1])

    return {name: info for name, info in classes.items() if descends(name)}


def receiver_status_table() -> dict[str, int]:
    tree = ast.parse((ROOT / "receiver" / "errors.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "HTTP_STATUS"
        ):
            assert isinstance(node.value, ast.Dict)
            return {
                key.id: value.value
                for key, value in zip(node.value.keys, node.value.values, strict=True)
                if isinstance(key, ast.Name) and isinstance(value, ast.Constant)
            }
    pytest.fail("receiver/errors.py has no HTTP_STATUS table", pytrace=False)


def test_core_knows_no_http_status_codes():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in python_files("core")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "http_status" in line
    ]
    # An error class carrying a status code under any other name counts too.
    classes = lesplanner_errors(error_classes("core"))
    for path in python_files("core"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name in classes:
                for item in node.body:
                    value = item.value if isinstance(item, ast.Assign | ast.AnnAssign) else None
                    if (
                        isinstance(value, ast.Constant)
                        and isinstance(value.value, int)
                        and 100 <= value.value <= 599
                    ):
                        offenders.append(f"{path.relative_to(ROOT)}:{item.lineno}: {node.name}")
    if offenders:
        pytest.fail(
            "core carries HTTP status codes (map them in receiver/errors.py HTTP_STATUS):\n  "
            + "\n  ".join(offenders),
            pytrace=False,
        )


def test_every_lesplanner_error_family_has_a_status_in_the_receivers_table():
    table = receiver_status_table()
    errors = lesplanner_errors(error_classes("core", "receiver"))
    assert "LesplannerError" in table and len(errors) > 15  # the walker sees the errors
    assert all(400 <= status <= 599 for status in table.values()), table
    assert set(table) <= set(errors), set(table) - set(errors)
    # Subclasses answer like their parents (MRO); every direct child is a family of its own
    # and must say its status, so a new kind of error never answers 400 by accident.
    unlisted = [
        f"{where}: {name}"
        for name, (where, bases) in errors.items()
        if "LesplannerError" in bases and name not in table
    ]
    if unlisted:
        pytest.fail(
            "LesplannerError subclasses without an HTTP status in receiver/errors.py HTTP_STATUS:\n  "
            + "\n  ".join(unlisted),
            pytrace=False,
        )
