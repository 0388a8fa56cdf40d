# diffuse sample: a good run writes its outputs; bad arguments get one line, exit 2, no output.
. tests/cli/lib.sh
M=tests/fixtures/unet/tiny/model
S="$DIFFUSE sample -m $M -q"
OUT=$T/s.png
NPY=$T/s.npy

check "sample ddim" $S --steps 3 -n 2 -o $OUT --output-npy $NPY --save-trajectory $T/tr.png --save-trajectory-npy $T/tr.npy
check "png written" [ -s $OUT ]
check "npy is (2,3,16,16) float32" [ "$(wc -c <$NPY)" -eq $((128 + 2 * 3 * 16 * 16 * 4)) ]
check "trajectory npy is (3,2,3,16,16)" [ "$(wc -c <$T/tr.npy)" -eq $((128 + 3 * 2 * 3 * 16 * 16 * 4)) ]
check "png signature" sh -c "head -c 8 $OUT | od -An -c | grep -q 'P   N   G'"
for s in ddpm ddim pndm euler euler-a heun lms dpmpp-2m dpmpp-3m unipc; do
    check "scheduler $s" $S --scheduler $s --steps 4 --output-npy $T/$s.npy
done
check "same seed, same bytes" sh -c "$S --scheduler euler-a --steps 4 --seed 5 --output-npy $T/a.npy --threads 1 && \
    $S --scheduler euler-a --steps 4 --seed 5 --output-npy $T/b.npy --threads 2 && cmp -s $T/a.npy $T/b.npy"
check "another seed, other bytes" sh -c "$S --scheduler ddpm --steps 4 --seed 6 --output-npy $T/c.npy && ! cmp -s $T/a.npy $T/c.npy"
check "sample --help" sh -c "$DIFFUSE sample --help | grep -q -- --guidance-scale"

expect_fail "unknown scheduler" 2 "unknown scheduler 'warp'" $OUT -- $S --scheduler warp -o $OUT
expect_fail "steps 0" 2 "steps" $OUT -- $S --steps 0 -o $OUT
expect_fail "bad dtype" 2 "--dtype must be f32 or bf16" $OUT -- $S --dtype half -o $OUT
expect_fail "steps beyond training" 2 "num_train_timesteps" $OUT -- $S --steps 5000 -o $OUT
expect_fail "class on unconditional" 2 "unconditional" $OUT -- $S --class 3 -o $OUT
expect_fail "class all on unconditional" 2 "class" $OUT -- $S --class all -o $OUT
expect_fail "bad eta" 2 "eta" $OUT -- $S --eta abc -o $OUT
expect_fail "no output named" 2 "output" $OUT -- $S --steps 2
expect_fail "bad size" 2 "divisible" $OUT -- $S --size 15x16 -o $OUT
expect_fail "init noise of the wrong shape" 2 "initial noise" $OUT -- $S --init-noise $NPY --steps 2 -n 3 -o $OUT
expect_fail "scheduler config missing" 1 "nope.json" $OUT -- $S --scheduler-config $T/nope.json -o $OUT
printf '{"_class_name": "DDIMScheduler", "beta_schedule": "wavy"}' >$T/bad.json
expect_fail "scheduler config bad value" 2 "wavy" $OUT -- $S --scheduler-config $T/bad.json -o $OUT
printf '{"_class_name": "DDIMScheduler", "use_flow_sigmas": true}' >$T/flow.json
expect_fail "unimplemented option" 2 "use_flow_sigmas" $OUT -- $S --scheduler-config $T/flow.json -o $OUT
expect_fail "beyond --max-memory" 1 "needs [0-9]+ MiB, more than --max-memory" $OUT -- $S -n 64 --steps 2 --max-memory 1 -o $OUT
expect_fail "beyond the machine's memory" 1 "needs [0-9]+ MiB, more than the memory" $OUT -- $S --size 8192x8192 --steps 1 -o $OUT
expect_fail "bad --max-memory" 2 "max-memory" $OUT -- $S --max-memory lots -o $OUT
summary cli_sample
