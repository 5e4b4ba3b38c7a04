#!/usr/bin/env sh
# The CI stress job of netq: seeded random configurations of the emulated
# transmit path (and, with --chaos, runs broken on purpose), each checked for
# every invariant, deadlock, worker crash and leaked /dev/shm object.
#
#   scripts/ci_stress.sh --budget 60 --chaos --seed 1 --junit stress-junit.xml
#
# Every argument goes to `python -m netq.run stress` (see --help); `python` is
# taken from PATH (the CI venv).  Exit status: 0 all runs passed, 1 a run
# failed (the seed, the configuration as TOML and a command that reproduces
# it are printed), 2 bad usage, 130/143 interrupted/terminated.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
# Run from a checkout too (an installed netq works the same).
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH
exec python -m netq.run stress "$@"
