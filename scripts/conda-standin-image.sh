#!/usr/bin/env bash
# Builds the base image the conda end-to-end test deploys on: racer-test/micromamba-standin:2.
#
# The real base image (mambaorg/micromamba) cannot be pulled here (no image registry) and no
# conda channel is reachable, so nothing can install conda packages. This image stands in for
# micromamba only: it has this machine's python3 (binary, shared libraries, standard library),
# busybox for /bin/sh, the mambauser account the real image has ($MAMBA_USER, uid 57439), and a
# `micromamba` script that takes the commands racer's generated Dockerfile uses (`create -y -n
# NAME -f FILE...`, `clean --all --yes`, `run -n NAME CMD...`): create makes the environment's
# folder and records the files it was given (it installs nothing), run executes CMD in it. What
# the test proves is racer's part: the Dockerfile it generates builds on a real engine and the
# container runs the command `conda project run` would, with the variables it would set.
#
# Prints the tag. Usage: scripts/conda-standin-image.sh [TAG]
set -euo pipefail
tag=${1:-racer-test/micromamba-standin:2}
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
# Debian's own python3 (a pyenv or venv shim on PATH is not a binary to copy).
py=$(readlink -f /usr/bin/python3 2>/dev/null || true)
[ -x "$py" ] || { echo "conda-standin-image.sh: /usr/bin/python3 is needed (apt-get install -y python3)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "conda-standin-image.sh: /bin/busybox is needed (apt-get install -y busybox-static)" >&2; exit 1; }
ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/root
mkdir -p "$root"/{bin,usr/bin,tmp,etc,home/mambauser,opt/conda/envs}
cp /bin/busybox "$root/bin/busybox"
for a in sh cat env ls mkdir id readlink; do ln -s busybox "$root/bin/$a"; done
cp "$py" "$root/usr/bin/python$ver"
ln -s "python$ver" "$root/usr/bin/python3"
ln -s python3 "$root/usr/bin/python"
for lib in $(ldd "$py" | awk '/=>/ {print $3; next} $1 ~ /^\// {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
tar -C / --exclude="usr/lib/python$ver/test" --exclude="usr/lib/python$ver/idlelib" \
  --exclude="usr/lib/python$ver/tkinter" --exclude="usr/lib/python$ver/ensurepip" \
  --exclude="usr/lib/python$ver/dist-packages" --exclude="usr/lib/python$ver/site-packages" \
  --exclude='__pycache__' -cf - "usr/lib/python$ver" | tar -C "$root" -xf -
printf 'root:x:0:0:root:/root:/bin/sh\nmambauser:x:57439:57439::/home/mambauser:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nmambauser:x:57439:\n' >"$root/etc/group"
cat >"$root/usr/bin/micromamba" <<'SHIM'
#!/bin/sh
# racer's test stand-in for micromamba (see scripts/conda-standin-image.sh): installs nothing.
set -e
cmd=$1
shift
case "$cmd" in
  create)
    name="" files=""
    while [ $# -gt 0 ]; do
      case "$1" in
        -y|--yes) ;;
        -n) name=$2; shift ;;
        -f) files="$files $2"; shift ;;
        *) echo "micromamba stand-in: unsupported create option $1" >&2; exit 2 ;;
      esac
      shift
    done
    [ -n "$name" ] || { echo "micromamba stand-in: create needs -n NAME" >&2; exit 2; }
    [ -n "$files" ] || { echo "micromamba stand-in: create needs -f FILE" >&2; exit 2; }
    mkdir -p "$MAMBA_ROOT_PREFIX/envs/$name"
    for f in $files; do
      [ -f "$f" ] || { echo "micromamba stand-in: no file $f" >&2; exit 1; }
      cat "$f" >>"$MAMBA_ROOT_PREFIX/envs/$name/specs.txt"
    done
    echo "micromamba stand-in: environment $name from$files (nothing installed)"
    ;;
  clean) ;;
  run)
    [ "$1" = -n ] || { echo "micromamba stand-in: run needs -n NAME" >&2; exit 2; }
    name=$2
    shift 2
    [ -d "$MAMBA_ROOT_PREFIX/envs/$name" ] || { echo "micromamba stand-in: no environment $name" >&2; exit 1; }
    CONDA_PREFIX="$MAMBA_ROOT_PREFIX/envs/$name" CONDA_DEFAULT_ENV="$name" exec "$@"
    ;;
  *) echo "micromamba stand-in: unsupported command $cmd" >&2; exit 2 ;;
esac
SHIM
chmod 755 "$root/usr/bin/micromamba"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
ENV PATH=/usr/bin:/bin MAMBA_USER=mambauser MAMBA_ROOT_PREFIX=/opt/conda
RUN chown -R 57439:57439 /opt/conda /home/mambauser && chmod 1777 /tmp
USER mambauser
DOCKERFILE
docker build -q -t "$tag" "$ctx" >&2
echo "$tag"
