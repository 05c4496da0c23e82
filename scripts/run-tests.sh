#!/usr/bin/env bash
# `make test`'s pytest part: each kind of test in turn, named as it starts, every part run even
# when one fails; the exit status says whether all passed. Usually 4-5 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."

PARTS=(unit integration e2e reliability docs)
declare -A WHAT=(
    [unit]="pure logic"
    [integration]="real local servers and tools"
    [e2e]="the imageprep program as an operator runs it"
    [reliability]="faults, kills, hostile input, timeouts"
    [docs]="every example of docs/"
)
failed=()
started=$SECONDS
for part in "${PARTS[@]}"; do
    echo "=== ${part} tests: ${WHAT[$part]}"
    part_started=$SECONDS
    .venv/bin/python -m pytest -q -p no:cacheprovider "tests/${part}" || failed+=("$part")
    echo "=== ${part} tests: $((SECONDS - part_started)) s"
done
echo "=== all tests: $((SECONDS - started)) s"
if ((${#failed[@]})); then
    echo "=== failed: ${failed[*]}"
    exit 1
fi
