#!/usr/bin/env bash
# Sets up the reference implementation of conda-project validation (the PyPI package
# conda-project 0.5.4) in a virtual environment, for the cross-check in
# crates/build/tests/reference.rs, and prints that environment's python on stdout (everything
# else goes to stderr). Idempotent: a venv that already imports the package is reused as is.
#   RACER_CACHE_DIR  where the venv lives (default ~/.cache/racer), as conda-project-0.5.4/
#
# conda itself is not on PyPI and conda_project runs `conda info --json` when imported, so the
# import is checked with CONDA_EXE pointing at a stub that answers only that (conda_reference.py
# does the same).
set -euo pipefail

version=0.5.4
cache=${RACER_CACHE_DIR:-$HOME/.cache/racer}
venv=$cache/conda-project-$version
python=$venv/bin/python
stub=$venv/conda-stub/conda

check() {
  [ -x "$python" ] && [ -x "$stub" ] || return 1
  local got
  got=$(CONDA_EXE=$stub "$python" -W ignore -c \
    'import conda_project, conda_lock.lockfile; print(conda_project.__version__)' 2>/dev/null) || return 1
  [ "$got" = "$version" ]
}

if check; then
  echo "$python"
  exit 0
fi

echo "setting up conda-project $version in $venv..." >&2
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  echo "installing python3-venv (Debian package)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq python3-venv >&2
fi

rm -rf "$venv"
mkdir -p "$cache"
python3 -m venv "$venv" >&2
"$python" -m pip install --quiet --disable-pip-version-check "conda-project==$version" >&2

mkdir -p "$(dirname "$stub")"
cat >"$stub" <<'EOF'
#!/bin/sh
if [ "$1" = "info" ]; then
  echo '{"platform": "linux-64", "envs_dirs": [], "pkgs_dirs": [], "channels": []}'
  exit 0
fi
echo "conda stub: only 'info --json' is available" >&2
exit 1
EOF
chmod 755 "$stub"

if ! check; then
  echo "conda-project $version does not import in $venv:" >&2
  CONDA_EXE=$stub "$python" -c 'import conda_project' >&2 || true
  exit 1
fi
echo "conda-project $version ready" >&2
echo "$python"
