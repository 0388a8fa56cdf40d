#!/bin/sh
# Runs each test program given as an argument (from the repository root), then the CLI tests in
# tests/cli/, and prints the total as "all: N passed, M failed", the line CI reads. A program that
# crashes, or exits non-zero without reporting a failure, counts as one failure.
passed=0; failed=0; broken=""
run_one() { # $1: name; the rest: the command
    name=$1; shift
    out=$("$@" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then broken="$broken $name"; failed=$((failed + 1)); return; fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then broken="$broken $name"; failed=$((failed + 1)); fi
}
for t in "$@"; do run_one "$t" "$t"; done
for t in tests/cli/test_*.sh; do
    [ -f "$t" ] && run_one "$t" sh "$t"
done
[ -n "$broken" ] && echo "crashed or gave no summary:$broken"
echo "all: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
