"""Dependencies are locked with hashes (issue 12, item 10), checked by reading the files.

People edit `requirements.in` (runtime) and `requirements-dev.in` (tests and tools, on top of the
runtime ones); `make lock` compiles them into `requirements.lock` and `requirements-dev.lock`: every
package of the whole tree pinned with `==` and the sha256 of its files. The Makefile installs only
from the locks, with `--require-hashes`, so a fresh machine gets exactly the files that were locked.
Nothing here runs pip or a network call: it parses the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_IN, DEV_IN = ROOT / "requirements.in", ROOT / "requirements-dev.in"
RUNTIME_LOCK, DEV_LOCK = ROOT / "requirements.lock", ROOT / "requirements-dev.lock"

PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(?:\[[^\]]*\])?"
    r"\s*==\s*(?P<version>[A-Za-z0-9.!+_-]+)\s*(?:;\s*(?P<marker>.+))?$"
)
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def canonical(name: str) -> str:
    """PEP 503: `Authlib`, `authlib` and `Auth_Lib` are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Entry:
    source: str  # "requirements.lock:12"
    text: str  # the requirement as written, continuation lines joined, comments dropped
    requirement: str  # the part before the options: "pandas==3.1.1 ; python_version >= '3.11'"
    options: tuple[str, ...]  # "--hash=sha256:…", "-r requirements.in", …

    @property
    def pin(self) -> re.Match[str] | None:
        return PIN.match(self.requirement)


def entries(text: str, label: str) -> list[Entry]:
    """The logical lines of a requirements file: `\\` continuations joined, comments and blanks dropped."""
    result: list[Entry] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line.strip())
        joined = " ".join(part for part in pending if part)
        pending = []
        if not joined:
            continue
        tokens = joined.split()
        first_option = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
        requirement = " ".join(tokens[:first_option])
        options = _group_options(tokens[first_option:])
        result.append(Entry(f"{label}:{start}", joined, requirement, options))
    return result


def _group_options(tokens: list[str]) -> tuple[str, ...]:
    """`-r file` and `--hash=…` as one string each."""
    grouped: list[str] = []
    for token in tokens:
        if token.startswith("-") or not grouped:
            grouped.append(token)
        else:
            grouped[-1] += " " + token
    return tuple(grouped)


def read_entries(path: Path) -> list[Entry]:
    assert path.exists(), f"{path.name} is missing"
    return entries(path.read_text(encoding="utf-8"), path.name)


def top_level_pins(path: Path) -> dict[str, str]:
    """name → version of every requirement in a .in file, following its `-r` includes."""
    pins: dict[str, str] = {}
    for entry in read_entries(path):
        if not entry.requirement:
            for option in entry.options:
                flag, _, target = option.partition(" ")
                if flag in ("-r", "--requirement"):
                    pins.update(top_level_pins(path.parent / target))
            continue
        match = entry.pin
        assert match, f"{entry.source}: {entry.text!r} is not pinned as name==version"
        pins[canonical(match["name"])] = match["version"]
    return pins


def locked_versions(path: Path) -> dict[str, set[str]]:
    """name → the versions a lock pins it at (more than one only under different markers)."""
    versions: dict[str, set[str]] = {}
    for entry in read_entries(path):
        match = entry.pin
        if match:
            versions.setdefault(canonical(match["name"]), set()).add(match["version"])
    return versions


def test_the_parser_joins_continuations_and_reads_pins_hashes_and_includes():
    sample = (
        "# a comment\n"
        "-r requirements.in\n"
        "psycopg[binary]==3.3.9  # with its C build\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        "    --hash=sha256:" + "a" * 64 + " \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "    # via click\n"
        "Requests>=2\n"
    )
    found = entries(sample, "sample")
    assert [e.source for e in found] == ["sample:2", "sample:3", "sample:4", "sample:8"]
    assert found[0].requirement == "" and found[0].options == ("-r requirements.in",)
    assert found[1].pin["name"] == "psycopg" and found[1].pin["version"] == "3.3.9"
    assert found[2].pin["name"] == "colorama" and found[2].pin["marker"] == "sys_platform == 'win32'"
    assert found[2].options == ("--hash=sha256:" + "a" * 64, "--hash=sha256:" + "b" * 64)
    assert found[3].pin is None
    assert canonical("Authlib") == canonical("authlib") and canonical("google_auth") == "google-auth"


def test_the_old_unlocked_requirement_files_are_gone():
    for old in ("requirements.txt", "requirements-dev.txt"):
        assert not (ROOT / old).exists(), f"{old} was replaced by requirements*.in + requirements*.lock"


def test_the_dev_sources_build_on_the_runtime_sources():
    options = [o for e in read_entries(DEV_IN) for o in e.options]
    assert "-r requirements.in" in options, "requirements-dev.in must include -r requirements.in"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_locked_requirement_is_an_exact_pin_with_hashes(lock: Path):
    found = read_entries(lock)
    assert len(found) > 20, f"{lock.name} should lock the whole tree, not only the top level"
    for entry in found:
        assert entry.pin, f"{entry.source}: {entry.text!r} is not name==version"
        assert entry.options, f"{entry.source}: {entry.requirement!r} has no --hash"
        for option in entry.options:
            assert HASH.match(option), f"{entry.source}: {option!r} is not a --hash=sha256:<64 hex>"


@pytest.mark.parametrize(
    ("sources", "lock"),
    [((RUNTIME_IN,), RUNTIME_LOCK), ((RUNTIME_IN, DEV_IN), DEV_LOCK)],
    ids=["runtime", "dev"],
)
def test_every_top_level_pin_is_locked_at_its_version(sources: tuple[Path, ...], lock: Path):
    locked = locked_versions(lock)
    for source in sources:
        for name, version in top_level_pins(source).items():
            assert locked.get(name) == {version}, (
                f"{source.name} pins {name}=={version}, {lock.name} has {sorted(locked.get(name, ()))}:"
                " run `make lock`"
            )


def test_the_dev_lock_has_the_runtime_lock_at_the_same_versions():
    runtime, dev = locked_versions(RUNTIME_LOCK), locked_versions(DEV_LOCK)
    differ = {
        name: (versions, dev.get(name)) for name, versions in runtime.items() if dev.get(name) != versions
    }
    assert not differ, f"requirements-dev.lock disagrees with requirements.lock: {differ}; run `make lock`"


# --- the Makefile ---------------------------------------------------------------------------


def makefile_lines() -> list[str]:
    """The Makefile's lines, `\\` continuations joined."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def makefile_variables() -> dict[str, str]:
    found = (re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*[:?]?=\s*(.*)$", line) for line in makefile_lines())
    return {match[1]: match[2] for match in found if match}


def expand(line: str, variables: dict[str, str]) -> str:
    """`$(LOCK)` → its value, as make would (variables unknown to the Makefile stay as written)."""
    for _ in range(5):
        line = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: variables.get(m[1], m[0]), line)
    return line


def makefile_rules() -> dict[str, tuple[str, list[str]]]:
    """target → (prerequisites, recipe lines with the Makefile's variables expanded) of its explicit rules."""
    rules: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    variables = makefile_variables()
    for line in makefile_lines():
        if line.startswith("\t") and current is not None:
            rules[current][1].append(expand(line.strip(), variables))
            continue
        current = None
        rule = re.match(r"^([^\s:=#][^:=]*?)\s*:(?!=)\s*(.*)$", line)
        if rule:
            prerequisites = rule[2]
            for target in rule[1].split():
                rules[target] = (prerequisites, [])
                current = target
    return rules


def pip_installs(rules: dict[str, tuple[str, list[str]]]) -> list[tuple[str, str]]:
    return [
        (target, line)
        for target, (_, recipe) in rules.items()
        for line in recipe
        if re.search(r"\bpip\s+install\b", line)
    ]


@pytest.mark.parametrize(
    ("target", "lock"), [("$(VENV)/.runtime", "requirements.lock"), ("$(VENV)/.dev", "requirements-dev.lock")]
)
def test_the_makefile_installs_each_environment_from_its_lock_with_hashes(target: str, lock: str):
    rules = makefile_rules()
    assert target in rules, f"the Makefile has no {target} rule"
    prerequisites, recipe = rules[target]
    assert lock in prerequisites.split(), f"{target} must be rebuilt when {lock} changes"
    assert any(
        "install" in line and "--require-hashes" in line and f"-r {lock}" in line for line in recipe
    ), f"{target} must install with `pip install --require-hashes -r {lock}`"


def test_every_pip_install_in_the_makefile_checks_hashes_from_a_lock():
    installs = pip_installs(makefile_rules())
    assert installs, "the Makefile installs nothing with pip?"
    for target, line in installs:
        assert "--require-hashes" in line, f"{target}: {line!r} installs without --require-hashes"
        assert re.search(r"-r\s+requirements(-dev)?\.lock\b", line), (
            f"{target}: {line!r} installs from no lock"
        )


def test_make_lock_regenerates_both_locks_from_the_sources():
    rules = makefile_rules()
    assert "lock" in rules, "the Makefile has no `lock` target"
    assert "lock" in rules[".PHONY"][0].split(), "`lock` is not in .PHONY"
    assert "## make lock:" in (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = " ".join(rules["lock"][1])
    for name in ("requirements.in", "requirements-dev.in", "requirements.lock", "requirements-dev.lock"):
        assert name in recipe, f"make lock does not use {name}"
    assert "--generate-hashes" in recipe and "--universal" in recipe
