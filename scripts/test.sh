#!/usr/bin/env bash
# Set up (see setup.sh) and run the test suite. Extra arguments go to pytest.
#
#   scripts/test.sh            the whole suite (about 14 minutes on 2 CPU cores, two pytest workers)
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

# --- Browser for the page test (tests/test_server_live.py) ----------------------------------
# Debian's chromium + chromium-driver, where apt can install them; without them that one
# test skips and says why. Never fatal.
if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
   && [[ "$(id -u)" == 0 ]]; then
  echo "[test] installing chromium + chromium-driver for the browser test (apt)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver; } >/dev/null 2>&1 \
    || echo "[test] WARNING: could not install chromium; the browser test will skip" >&2
fi
# ---------------------------------------------------------------------------------------------

# One pytest worker per usable CPU (at most 4), each test file kept on one worker so its
# module fixtures (a trained run, exports) are made once; -n given by the caller wins.
workers=$("$ROOT/.venv/bin/python" -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')
parallel=()
if [[ " ${args[*]-} " != *" -n "* && "$workers" -gt 1 ]]; then
  parallel=(-n "$workers" --dist loadfile)
fi
"$ROOT/.venv/bin/python" -m pytest ${parallel[@]+"${parallel[@]}"} ${args[@]+"${args[@]}"}
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "[test] pytest collected no tests: failing" >&2
  exit 1
fi
exit $rc
