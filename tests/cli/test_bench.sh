# diffuse bench: forward passes and training steps give their JSON line; bad arguments get one
# line and exit 2.
. tests/cli/lib.sh
M=tests/fixtures/unet/tiny/model
B="$DIFFUSE bench -m $M --repeat 2 --threads 1"
check "forward --json" sh -c "$B --batch 2 --json | grep -q '\"forward_ms_median\"'"
check "forward --json has gflops, batch, threads" sh -c "$B --batch 2 --json | grep '\"gflops\"' | grep '\"batch\": 2' | grep -q '\"threads\": 1'"
check "--train --json" sh -c "$B --train --batch 2 --json | grep -q '\"train_step_ms_median\"'"
check "--help names --train" sh -c "$DIFFUSE bench --help | grep -q -- --train"
check "--dtype bf16 --json says bf16" sh -c "$B --batch 2 --dtype bf16 --json | grep -q '\"dtype\": \"bf16\"'"
OUT=$T/none
expect_fail "no model" 2 "model" $OUT -- $DIFFUSE bench
expect_fail "batch 0" 2 "batch" $OUT -- $B --batch 0
expect_fail "bad size" 2 "size" $OUT -- $B --size 0x8
expect_fail "repeat abc" 2 "repeat" $OUT -- $B --repeat abc
expect_fail "missing model" 1 "nope" $OUT -- $DIFFUSE bench -m $T/nope
expect_fail "--train with a bad size" 2 "size" $OUT -- $B --train --size 7x9
expect_fail "unknown --dtype" 2 "--dtype must be f32 or bf16, not 'fp16'" $OUT -- $B --dtype fp16
expect_fail "--train with --dtype bf16" 2 "training runs in f32" $OUT -- $B --train --dtype bf16
summary cli_bench
