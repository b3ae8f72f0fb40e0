#!/usr/bin/env python3
"""Cross-check racer's conda-project validation against the reference implementation.

For every case in fixtures/conda/, ask the real `conda-project` package (PyPI, 0.5.4) what it
makes of the project. Two modes:

    python crates/build/tests/conda_reference.py          # a table next to racer's verdicts
    python crates/build/tests/conda_reference.py --json   # what the reference does, as JSON

`scripts/conda-reference.sh` makes a virtual environment with the package and prints its python;
`crates/build/tests/reference.rs` runs `--json` with it and compares every case with racer
(`scripts/test` does this). The table mode compares only verdicts, with each case's
expected.json (which `conda::fixture_corpus_matches_expected` pins to racer's actual output).

"Accepts" means everything the reference does to load a project succeeds: `CondaProject(dir)`
(finds and parses the project file with its pydantic model), building its environments and
commands (which resolves each command's environment), parsing every environment file with
`EnvironmentYaml` and its conda dependencies with conda's `MatchSpec`, and parsing every
`conda-lock.<env>.yml` that exists with conda-lock's own `parse_conda_lock_file` (what
conda-project calls before installing). pip entries are NOT checked: conda passes them to pip as
arguments (`-e .` is common), and conda-project only parses them as requirements in
`conda project add/remove`.

--json prints one object, `{"version": ..., "packages": {...}, "cases": {<case>: {...}}}`; per
case `accepts` and `error` (the reference's exception, `Type: message`, paths made relative to
the case), and when it accepts `name`, `environments` and `commands` (names in declared order)
and `run`: per command its `cmd`, `environment` (the one it runs in: its own, else the default;
null only when there is none) and `variables`, which is `prepare_variables`'s merge without
os.environ: project variables < the command's < `.env` (python-dotenv's `dotenv_values`), later
layers winning even with a null (ChainMap), nulls kept instead of raising. os.environ is also
empty while `.env` is read, so `${NAME}` in it sees only the `.env` lines above it (at run time
the reference would also look in the caller's environment). A `.env` that cannot be read counts
as refused.

conda-project calls `conda info --json` when it is imported; conda itself is not on PyPI, so when
no `conda` is on PATH this script points CONDA_EXE at a stub that answers only `info --json`.
Loading a project never needs more.

Exit status (table mode): 0 when every disagreement is a deliberate difference (the case's
expected.json has a "differs" reason), 1 otherwise, 2 when the reference cannot be imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "fixtures" / "conda"
TIMEOUT_SECONDS = 60

STUB = """#!/bin/sh
if [ "$1" = "info" ]; then
  echo '{"platform": "linux-64", "envs_dirs": [], "pkgs_dirs": [], "channels": []}'
  exit 0
fi
echo "conda stub: only 'info --json' is available" >&2
exit 1
"""


def prepare(tmp: Path) -> list[tuple[str, Path]]:
    """Copy the corpus and apply each case's setup.json, as the Rust tests do (tests/util.rs)."""
    # Like tests/util.rs's copy_dir: regular files and folders only.
    skip_links = lambda folder, names: [n for n in names if os.path.islink(os.path.join(folder, n))]
    shutil.copytree(CORPUS, tmp / "conda", ignore=skip_links)
    cases = []
    for case in sorted((tmp / "conda").iterdir()):
        if not case.is_dir():
            continue
        setup = case / "setup.json"
        if setup.exists():
            spec = json.loads(setup.read_text())
            setup.unlink()
            for link, target in spec.get("symlinks", {}).items():
                os.symlink(target, case / link)
            for file, size in spec.get("pad", {}).items():
                path = case / file
                text = path.read_text()
                line = "# " + "x" * 77 + "\n"
                while len(text.encode()) < size:
                    text += line
                path.write_text(text)
        cases.append((case.name, case))
    return cases


def use_conda_stub(stub_dir: Path) -> None:
    """Point CONDA_EXE at a stub unless a real conda is around."""
    if shutil.which("conda") is not None or "CONDA_EXE" in os.environ:
        return
    stub = stub_dir / "conda"
    stub.write_text(STUB)
    stub.chmod(0o755)
    os.environ["CONDA_EXE"] = str(stub)


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for dist in ("conda-project", "conda-lock", "pydantic", "ruamel.yaml", "python-dotenv"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


@contextlib.contextmanager
def empty_environ():
    saved = dict(os.environ)
    os.environ.clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def time_limit(seconds: int):
    def expired(signum, frame):
        raise TimeoutError(f"timed out after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def describe(error: BaseException, case: Path) -> str:
    text = f"{type(error).__name__}: {error}".rstrip()
    for prefix in {str(case.resolve()), str(case)}:
        text = text.replace(prefix + "/", "").replace(prefix, ".")
    return text


def check_case(case: Path) -> dict:
    """What the reference makes of one project folder (see the module's documentation)."""
    from conda_lock.conda_lock import parse_conda_lock_file
    from conda_project import CondaProject
    from conda_project.project_file import EnvironmentYaml
    from conda_project.utils import merge_dicts
    from dotenv import dotenv_values

    try:
        with time_limit(TIMEOUT_SECONDS), contextlib.redirect_stdout(sys.stderr):
            project = CondaProject(case)
            declared = project._project_file
            environments = project.environments
            for name in declared.environments:
                environment = environments[name]
                for source in environment.sources:
                    EnvironmentYaml.parse_yaml(source).conda_matchspecs
                if environment.lockfile.exists():
                    parse_conda_lock_file(environment.lockfile)
            commands = project.commands
            with empty_environ():
                dotenv = dotenv_values(project.directory / ".env")
            run = {}
            for name in declared.commands:
                command = commands[name]
                layers = [declared.variables, command.command_variables, dotenv]
                variables = merge_dicts(*[{} if v is None else v for v in layers])
                run[name] = {
                    "cmd": command.cmd,
                    "environment": None if command.environment is None else command.environment.name,
                    "variables": dict(sorted(variables.items())),
                }
    except Exception as error:  # everything the reference raises is its refusal
        return {"accepts": False, "error": describe(error, case)}
    return {
        "accepts": True,
        "error": None,
        "name": declared.name,
        "environments": list(declared.environments),
        "commands": list(declared.commands),
        "run": run,
    }


def import_reference() -> str:
    import conda_project

    return conda_project.__version__


def main_json(cases: list[tuple[str, Path]]) -> int:
    with contextlib.redirect_stdout(sys.stderr):
        version = import_reference()
    result = {
        "version": version,
        "packages": package_versions(),
        "cases": {name: check_case(case) for name, case in cases},
    }
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def main_table(cases: list[tuple[str, Path]]) -> int:
    print(f"reference: conda-project {import_reference()}\n")
    unexpected = 0
    print(f"{'case':34} {'racer':8} {'reference':10} agree  note")
    print("-" * 120)
    for name, case in cases:
        try:
            expected = json.loads((CORPUS / name / "expected.json").read_text())
        except FileNotFoundError:
            expected = None
        ref = check_case(case)
        why = " / ".join(l.strip() for l in (ref["error"] or "").splitlines() if l.strip())[:150]
        verdict = lambda ok: "accept" if ok else "reject"
        if expected is None:
            print(f"{name:34} {'?':8} {verdict(ref['accepts']):10} {'?':6} no expected.json; {why}")
            unexpected += 1
            continue
        racer_ok = expected["valid"]
        agree = racer_ok == ref["accepts"]
        note = why
        if not agree:
            if expected.get("differs"):
                note = "deliberate: " + expected["differs"]
            else:
                note = "UNEXPECTED: " + why
                unexpected += 1
        print(f"{name:34} {verdict(racer_ok):8} {verdict(ref['accepts']):10} {'yes' if agree else 'NO':6} {note}")
    print("-" * 120)
    total = len(cases)
    print(f"{total - unexpected} of {total} cases agree or differ deliberately (verdicts only)")
    return 1 if unexpected else 0


def main() -> int:
    json_mode = "--json" in sys.argv[1:]
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory(prefix="conda-reference-") as tmp:
        stub_dir = Path(tmp) / "stub"
        stub_dir.mkdir()
        use_conda_stub(stub_dir)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                import_reference()
        except Exception as error:
            print(f"cannot import conda_project: {type(error).__name__}: {error}", file=sys.stderr)
            return 2
        cases = prepare(Path(tmp))
        return main_json(cases) if json_mode else main_table(cases)


if __name__ == "__main__":
    sys.exit(main())
