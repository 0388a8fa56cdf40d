#!/bin/sh
# A subset of the CLI under valgrind memcheck: loading and describing a model, one network call,
# one sampling run, a few training steps with a checkpoint and a resume, and refusals of bad
# files. Each must finish with zero memcheck errors and no definitely, indirectly or possibly
# lost memory. One thread, so OpenMP's thread pool does not blur the leak report.
# Run by .ci/run after `make`; needs valgrind. Prints "valgrind: N passed, M failed".
. tests/cli/lib.sh
M=tests/fixtures/unet/tiny/model
C=tests/fixtures/unet/tiny/cases/b2_int_t10_t999

# vg NAME WANT-STATUS COMMAND...: the command exits with WANT-STATUS and memcheck is clean.
vg() {
    name=$1 want=$2; shift 2
    valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
        --log-file=$T/vg.log "$@" >/dev/null 2>$T/err
    rc=$?
    if [ $rc -eq "$want" ] && [ ! -s $T/vg.log ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc (want $want)" >&2
        head -n 40 $T/vg.log $T/err >&2
    fi
}

tiny_training_set $T/data 8
TRAIN="$DIFFUSE train --data $T/data --unet-config $T/unet.json --batch-size 2 --checkpoint-every 1 --sample-every 2 --threads 1 -q"

vg "info" 0 $DIFFUSE info -m $M
vg "unet" 0 $DIFFUSE unet -m $M --input $C/sample.npy --timesteps $C/timesteps.npy --output $T/out.npy --threads 1
vg "sample" 0 $DIFFUSE sample -m $M --scheduler dpmpp-2m --steps 3 -n 2 -o $T/s.png --output-npy $T/s.npy --threads 1 -q
vg "train" 0 $TRAIN --max-steps 2 --out $T/run
vg "train --resume" 0 $TRAIN --max-steps 3 --out $T/run --resume
vg "sample the trained model" 0 $DIFFUSE sample -m $T/run --steps 2 -o $T/t.png --threads 1 -q

# refusals: bad files take the error paths, which must free everything too
printf 'not a safetensors file' >$T/bad.safetensors
mkdir -p $T/badmodel && cp $M/config.json $T/badmodel/ && cp $T/bad.safetensors $T/badmodel/diffusion_pytorch_model.safetensors
vg "truncated weights" 2 $DIFFUSE info -m $T/badmodel
head -c 100 $C/sample.npy >$T/short.npy
vg "truncated npy" 2 $DIFFUSE unet -m $M --input $T/short.npy --timesteps $C/timesteps.npy --output $T/o2.npy --threads 1
printf '{"sample_size": 8, "block_out_channels": [8, 16], "norm_num_groups": 3}' >$T/badmodel/config.json
vg "bad config" 2 $DIFFUSE info -m $T/badmodel
vg "bad argument" 2 $DIFFUSE sample -m $M --steps -4 -o $T/x.png

summary valgrind
