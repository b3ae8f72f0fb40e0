#!/usr/bin/env python3
"""Cross-check racer's conda-project validation against the reference implementation.

For every case in fixtures/conda/, ask the real `conda-project` package (PyPI) whether it accepts
the project, and print a table next to racer's verdict (the case's expected.json, which the Rust
test `conda::fixture_corpus_matches_expected` pins to racer's actual output).

    python3 -m venv /tmp/cp-venv && /tmp/cp-venv/bin/pip install conda-project
    /tmp/cp-venv/bin/python crates/build/tests/conda_reference.py

"Accepts" means everything the reference does to load a project succeeds: `CondaProject(dir)`
(finds and parses the project file with its pydantic model), building its environments and
commands (which resolves each command's environment), and parsing every environment file with
`EnvironmentYaml` and its conda dependencies with conda's `MatchSpec`. pip entries are not
checked: conda passes them to pip as arguments (`-e .` is common), and conda-project only parses
them as requirements in `conda project add/remove`.

conda-project calls `conda info --json` when it is imported; conda itself is not on PyPI, so when
no `conda` is on PATH this script points CONDA_EXE at a stub that answers only `info --json`.
Loading a project never needs more.

Exit status: 0 when every disagreement is one of the documented, deliberate differences
(tests/README.md), 1 otherwise, 2 when the reference cannot be imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "fixtures" / "conda"

# Cases where racer deliberately differs from the reference; see tests/README.md.
DELIBERATE = {
    "unknown-top-level-field": "reference ignores unknown top-level fields (only Command has extra=forbid)",
    "dotdot-path": "reference reads environment files outside the project",
    "symlink-out": "reference follows symlinks out of the project",
    "two-pip-lists": "reference silently ignores every pip: list after the first",
    "boolean-variable": "reference turns `DEBUG: true` into the string 'True'",
    "empty-environment": "reference accepts an environment with no files",
    "bad-command-line": "reference splits the command line only when it runs it",
    "yaml-bomb": "reference (ruamel) keeps aliases as shared references and ignores the unknown key",
    "oversized": "reference has no size limit",
}

STUB = """#!/bin/sh
if [ "$1" = "info" ]; then
  echo '{"platform": "linux-64", "envs_dirs": [], "pkgs_dirs": [], "channels": []}'
  exit 0
fi
echo "conda stub: only 'info --json' is available" >&2
exit 1
"""

CHECK = r"""
import sys, warnings
warnings.filterwarnings("ignore")
from conda_project import CondaProject
from conda_project.project_file import EnvironmentYaml
project = CondaProject(sys.argv[1])
envs = project.environments
for name in project._project_file.environments:
    for source in envs[name].sources:
        env = EnvironmentYaml.parse_yaml(source)
        env.conda_matchspecs
project.commands
"""


def prepare(tmp: Path) -> list[tuple[str, Path]]:
    """Copy the corpus and apply each case's setup.json, as the Rust tests do."""
    shutil.copytree(CORPUS, tmp / "conda")
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


def reference_verdict(case: Path, env: dict) -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHECK, str(case)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    if proc.returncode == 0:
        return True, ""
    lines = proc.stderr.rstrip().splitlines()
    # The last exception line (unindented "SomeError: ..."), plus what follows it (pydantic puts
    # the failing field and the reason on the next lines).
    start = max((i for i, l in enumerate(lines) if l and not l[0].isspace() and ":" in l), default=0)
    summary = " / ".join(l.strip() for l in lines[start:] if l.strip())
    summary = summary.replace(f"{case}/", "").replace(f"{case.parent}/", "")
    return False, summary[:150]


def main() -> int:
    env = dict(os.environ)
    stub_dir = None
    if shutil.which("conda") is None and "CONDA_EXE" not in env:
        stub_dir = tempfile.mkdtemp(prefix="conda-stub-")
        stub = Path(stub_dir) / "conda"
        stub.write_text(STUB)
        stub.chmod(0o755)
        env["CONDA_EXE"] = str(stub)
    probe = subprocess.run(
        [sys.executable, "-c", "import conda_project; print(conda_project.__version__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        print("cannot import conda_project:", probe.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return 2
    print(f"reference: conda-project {probe.stdout.strip()}\n")

    unexpected = 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = prepare(Path(tmp))
        print(f"{'case':30} {'racer':8} {'reference':10} agree  note")
        print("-" * 110)
        for name, case in cases:
            expected = json.loads((CORPUS / name / "expected.json").read_text())
            racer_ok = expected["valid"]
            ref_ok, why = reference_verdict(case, env)
            agree = racer_ok == ref_ok
            note = why
            if not agree:
                if name in DELIBERATE:
                    note = "deliberate: " + DELIBERATE[name]
                else:
                    note = "UNEXPECTED: " + why
                    unexpected += 1
            verdict = lambda ok: "accept" if ok else "reject"
            print(f"{name:30} {verdict(racer_ok):8} {verdict(ref_ok):10} {'yes' if agree else 'NO':6} {note}")
        print("-" * 110)
        total = len(cases)
        print(f"{total - unexpected} of {total} cases agree or differ deliberately")
    if stub_dir:
        shutil.rmtree(stub_dir, ignore_errors=True)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
