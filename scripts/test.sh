#!/usr/bin/env bash
# Set up (see setup.sh) and run the test suite. Extra arguments go to pytest.
#
#   scripts/test.sh            the whole suite (about 8 minutes on 2 CPU cores)
#   scripts/test.sh --quick    without the slow tests and without the tests that need DALI's
#                              TensorFlow plugin (markers slow, dali): about 3 minutes, and it
#                              passes where the plugin could not be built
#
# Exit code 5 from pytest (no tests collected) counts as a failure.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=()
for arg in "$@"; do
  if [[ "$arg" == "--quick" ]]; then
    args+=(-m "not slow and not dali")
  else
    args+=("$arg")
  fi
done
"$ROOT/scripts/setup.sh" || exit 1
cd "$ROOT"
"$ROOT/.venv/bin/python" -m pytest ${args[@]+"${args[@]}"}
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "[test] pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
