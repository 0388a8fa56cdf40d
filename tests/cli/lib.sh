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

# tiny_training_set DIR N: N random 8x8 grey images, all labelled 0, as idx files in DIR (N < 256),
# and $T/unet.json, a small UNet2DModel config for them.
tiny_training_set() {
    mkdir -p "$1"
    count="\\$(printf '%03o' "$2")"
    { printf '\000\000\010\003\000\000\000'; printf "$count"; printf '\000\000\000\010\000\000\000\010'
      head -c $(($2 * 64)) /dev/urandom; } >"$1/train-images-idx3-ubyte"
    { printf '\000\000\010\001\000\000\000'; printf "$count"; head -c "$2" /dev/zero; } >"$1/train-labels-idx1-ubyte"
    cat >$T/unet.json <<'JSON'
{"sample_size": 8, "in_channels": 1, "out_channels": 1, "layers_per_block": 1, "block_out_channels": [8, 16],
 "down_block_types": ["DownBlock2D", "AttnDownBlock2D"], "up_block_types": ["AttnUpBlock2D", "UpBlock2D"],
 "norm_num_groups": 4, "attention_head_dim": 8}
JSON
}
