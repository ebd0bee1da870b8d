"""Mutation testing with mutmut over the modules that guard money and time (`make mutate`).

mutmut changes the code one small step at a time (a `<` becomes `<=`, a constant moves by one, a
call loses an argument, a return value becomes None) and runs the tests against each change: a
change no test notices *survives*, and is either a missing test or an equivalent change that
docs/TESTING.md lists with its reason.

mutmut reads one configuration per project, so each module here gets its own working folder
(.mutmut/<module>/) with links to the project and a pyproject.toml of its own, which points that
module at the tests that specify it. That keeps each run short and each score honest: a mutant
in core/slots.py must be killed by tests/unit/test_slots.py, not by a booking test that happens to
pass through it. mutmut remembers its results in that folder and resumes where it stopped.

    python scripts/mutation.py                  # slots, then lessons, then webhooks
    python scripts/mutation.py slots            # one module
    python scripts/mutation.py --results slots  # the scores and survivors, without running
    python scripts/mutation.py --fresh slots    # forget earlier results first
    python scripts/mutation.py --recheck slots  # the survivors against the tests as they are now

Extra arguments after `--` go to `mutmut run`, e.g. `-- "core.lessons.x_expire_holds*"`.
Exit code 0 when no mutant survived in the modules asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutmut"
RECHECK_TIMEOUT = 600  # seconds per mutant; a mutant that loops forever is left as it was
MUTMUT = Path(sys.executable).parent / "mutmut"
# What the tests need next to the mutated package (mutmut copies them into its mutants/ folder).
LINKS = ["core", "tests", "receiver", "migrations", "alembic.ini", "ui", "app_pages", "app.py", "examples"]


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    tests: tuple[str, ...]


# The lifecycle's fault matrix (every outside call failing in every way, about a minute) checks
# the job queue more than the lesson rules; it stays out so that a survivor costs seconds.
# Booking and self-service specify the steps the lifecycle tests do not reach (slot_free_in_database,
# mark_outcome, buffer_of); the webhook tests reach await_payment, the Google booking tests
# _calendar_failed.
MODULES = [
    Module("slots", "core/slots.py", ("tests/unit/test_slots.py", "tests/unit/test_busy_index.py")),
    Module(
        "lessons",
        "core/lessons.py",
        (
            "tests/unit/test_lifecycle.py",
            "tests/unit/test_booking.py",
            "tests/api/test_self_service.py",
            "tests/unit/test_webhooks.py",
            "tests/unit/test_google_booking.py",
            "-k",
            "not every_outside_call",
        ),
    ),
    # A refund's effect on credits, bundles and series is specified where those are: their tests
    # reach the refund handler through signed deliveries too. Reconcile records an open session
    # of ours through the same function as a lost webhook's (with its link).
    Module(
        "webhooks",
        "core/payments/webhooks.py",
        (
            "tests/unit/test_webhooks.py",
            "tests/unit/test_stripe_reconcile.py",
            "tests/unit/test_refunds.py",
            "tests/unit/test_credit_cancel.py",
            "tests/reliability/test_attack_credits.py",
            "tests/api/test_bundles.py",
            "tests/api/test_series.py",
        ),
    ),
]


def _toml_list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def prepare(module: Module, fresh: bool) -> Path:
    folder = WORK / module.name
    if fresh and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in LINKS:
        link = folder / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    # pytest's own settings (markers, warnings) come along; mutmut's are this module's.
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    pytest_lines = [
        f"{key} = {_toml_list(value) if isinstance(value, list) else repr(value)}"
        for key, value in pytest_options.items()
        if key != "addopts"
    ]
    (folder / "pyproject.toml").write_text(
        "\n".join(
            [
                "# Written by scripts/mutation.py for one module; edit MODULES there instead.",
                "[tool.pytest.ini_options]",
                *pytest_lines,
                "",
                "[tool.mutmut]",
                'source_paths = ["core"]',
                f"only_mutate = {_toml_list([module.path])}",
                f"also_copy = {_toml_list([n for n in LINKS if n not in ('core', 'tests')])}",
                'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist"]',
                f"pytest_add_cli_args_test_selection = {_toml_list(module.tests)}",
                "use_git_change_detection = false",
                "",
            ]
        )
    )
    return folder


def run(module: Module, folder: Path, extra: list[str]) -> None:
    print(f"==> mutmut over {module.path} with {' '.join(module.tests)}", flush=True)
    subprocess.run([str(MUTMUT), "run", "--max-children", "1", *extra], cwd=folder, check=False)


def results(module: Module, folder: Path) -> tuple[Counter[str], dict[str, list[str]]]:
    """How many mutants have each status (killed, survived, timeout, no tests, not checked, ...)
    and their names by status."""
    out = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=folder, capture_output=True, text=True, check=False
    ).stdout
    counts: Counter[str] = Counter()
    names: dict[str, list[str]] = {}
    for line in out.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name.startswith("core."):
            continue
        counts[status] += 1
        names.setdefault(status, []).append(name)
    return counts, names


def recheck(module: Module, folder: Path, survivors: list[str], tests: list[str] | None = None) -> list[str]:
    """Run the module's tests against each survivor again (mutmut's own resume does not re-test
    a survivor with tests added since); record the ones that now fail as killed, and a mutant that
    had no tests and still passes them as survived (one not run yet stays for the next run).
    Returns the survivors left."""
    # The tests as they are now (mutmut copied them when it last ran).
    shutil.copytree(ROOT / "tests", folder / "mutants" / "tests", dirs_exist_ok=True)
    meta_path = folder / "mutants" / (module.path + ".meta")
    meta = json.loads(meta_path.read_text())
    left = []
    for name in survivors:
        try:
            outcome = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-x",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:xdist",
                    *(tests or module.tests),
                ],
                cwd=folder / "mutants",
                env={**os.environ, "MUTANT_UNDER_TEST": name},
                capture_output=True,
                check=False,
                timeout=RECHECK_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            left.append(name)
            print(f"    timed out again: {name}", flush=True)
            continue
        if outcome.returncode == 1:  # a test failed: killed
            meta["exit_code_by_key"][name] = 1
            meta_path.write_text(json.dumps(meta, indent=2))  # kept if stopped halfway
            print(f"    killed now: {name}", flush=True)
        else:
            if meta["exit_code_by_key"].get(name) == 33:  # "no tests" until now
                meta["exit_code_by_key"][name] = 0
                meta_path.write_text(json.dumps(meta, indent=2))
            left.append(name)
            print(f"    still survives: {name}", flush=True)
    return left


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", help=", ".join(m.name for m in MODULES) + " (default: all)")
    parser.add_argument("--results", action="store_true", help="only show the scores and survivors")
    parser.add_argument("--fresh", action="store_true", help="forget earlier results first")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="run the tests again against each survivor (after adding tests)",
    )
    parser.add_argument("--tests", nargs="+", help="with --recheck: these test files instead of the module's")
    parser.add_argument(
        "--unchecked",
        action="store_true",
        help="with --recheck: also the mutants not run yet or timed out (those the tests kill are recorded)",
    )
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)  # what follows `--` is mutmut's
    args, extra = parser.parse_known_args(argv[:cut])
    extra += argv[cut + 1 :]
    unknown = set(args.modules) - {m.name for m in MODULES}
    if unknown:
        parser.error(f"unknown module(s): {', '.join(sorted(unknown))}")
    chosen = [m for m in MODULES if not args.modules or m.name in args.modules]
    survived = 0
    for module in chosen:
        folder = prepare(module, args.fresh)
        if args.recheck:  # the survivors (and untested) matching the patterns after `--` (default: all)
            by_status = results(module, folder)[1]
            candidates = by_status.get("survived", []) + by_status.get("no tests", [])
            if args.unchecked:  # a run stopped halfway: what the new tests kill need not wait for it
                candidates += by_status.get("not checked", []) + by_status.get("timeout", [])
            chosen_survivors = [n for n in candidates if not extra or any(fnmatch(n, p) for p in extra)]
            recheck(module, folder, chosen_survivors, args.tests)
        elif not args.results:
            run(module, folder, extra)
        counts, by_status = results(module, folder)
        survivors = by_status.get("survived", [])
        total = sum(counts.values())
        killed = counts.get("killed", 0)
        rest = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "killed")
        print(f"{module.path}: {killed}/{total} killed" + (f" ({rest})" if rest else ""))
        for name in survivors:
            print(f"    survived: {name}")
        survived += len(survivors)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
