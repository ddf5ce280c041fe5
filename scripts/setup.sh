#!/usr/bin/env bash
# Set up fastfood in .venv at the repo root: TensorFlow, DALI, then the DALI TF plugin.
#
# Idempotent: a stamp records what was installed; when pyproject.toml and the GPU answer
# are unchanged and the venv still imports, this returns in about a second.
# On a machine where nvidia-smi answers, tensorflow[and-cuda] is installed instead of
# plain tensorflow. If the DALI TF plugin cannot be built, setup still finishes with a
# warning: the tf.data loader keeps working and `--loader auto` falls back to it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TF_VERSION="2.21.0"
DALI_VERSION="2.4.0"
say() { printf '[setup] %s\n' "$*" >&2; }

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  GPU=1; TF_SPEC="tensorflow[and-cuda]==$TF_VERSION"
else
  GPU=0; TF_SPEC="tensorflow==$TF_VERSION"
fi

STAMP="$VENV/.fastfood-setup"
WANT="$(cat "$ROOT/pyproject.toml" "$0" | sha256sum | cut -c1-16) gpu=$GPU"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] \
   && "$VENV/bin/python" -c "import fastfood, click" 2>/dev/null; then
  say "up to date ($VENV)"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
LOG="$VENV/setup.log"
# pip's build chatter goes to a log; on failure its tail is shown.
pip_quiet() {
  if ! "${PIP[@]}" "$@" >>"$LOG" 2>&1; then
    grep -v "is ignored" "$LOG" | tail -n 25 >&2
    return 1
  fi
}
: > "$LOG"
say "installing fastfood with $TF_SPEC and nvidia-dali-cuda120==$DALI_VERSION (first time: about a minute)"
pip_quiet install --upgrade pip setuptools wheel || { say "pip upgrade failed (see $LOG)"; exit 1; }
pip_quiet install "$TF_SPEC" -e "$ROOT[test,bench,export]" || { say "install failed (see $LOG)"; exit 1; }

if "$VENV/bin/python" -c "import nvidia.dali.plugin.tf" 2>/dev/null; then
  say "DALI TensorFlow plugin already built"
else
  say "building the DALI TensorFlow plugin against the installed TensorFlow (about 20 s)"
  if ! pip_quiet install --no-build-isolation "nvidia-dali-tf-plugin-cuda120==$DALI_VERSION"; then
    say "WARNING: the DALI TensorFlow plugin could not be built; --loader dali is unavailable,"
    say "WARNING: --loader auto and tfdata keep working. Retry: $VENV/bin/pip install --no-build-isolation nvidia-dali-tf-plugin-cuda120==$DALI_VERSION"
  fi
fi

# fastfood's DALI CPU resize operator is C++ compiled against the installed DALI; build it now
# rather than on the first training run (about 10 s). Without a compiler the DALI CPU pipeline
# falls back to DALI's own (slower) fn.resize.
if "$VENV/bin/python" -c "import nvidia.dali" 2>/dev/null; then
  say "building fastfood's native DALI resize operator (about 10 s)"
  if ! "$VENV/bin/python" -m fastfood.loaders.native >>"$LOG" 2>&1; then
    say "WARNING: $(tail -n 1 "$LOG")"
    say "WARNING: the DALI CPU pipeline will use fn.resize (slower); install g++ and rerun to build it"
  fi
fi

echo "$WANT" > "$STAMP"
say "done: $VENV/bin/fastfood is ready (gpu=$GPU)"
