# Helpers for the CLI tests: each test script sources this, calls check/expect_fail, then summary.
DIFFUSE=${DIFFUSE:-build/diffuse}
T=$(mktemp -d "${TMPDIR:-/tmp}/diffuse-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0; failed=0

check() { # check NAME CONDITION-COMMAND...
    name=$1; shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL $name" >&2; fi
}

# expect_fail NAME STATUS PATTERN OUTPUT-FILE -- COMMAND...: the command exits with STATUS, prints
# exactly one line on stderr that matches PATTERN, and leaves no OUTPUT-FILE behind.
expect_fail() {
    name=$1 want=$2 pattern=$3 out=$4; shift 5
    rm -f "$out"
    "$@" >"$T/stdout" 2>"$T/stderr"; rc=$?
    lines=$(wc -l <"$T/stderr")
    if [ "$rc" -eq "$want" ] && [ "$lines" -eq 1 ] && grep -q -E -- "$pattern" "$T/stderr" && [ ! -e "$out" ] &&
       [ -z "$(ls "$(dirname "$out")" 2>/dev/null | grep '\.tmp\.')" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc (want $want), stderr ($lines lines): $(head -c 300 "$T/stderr")" >&2
    fi
}

summary() { echo "$1: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; }
