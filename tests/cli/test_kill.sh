# Training survives being killed: a run SIGKILLed at 20 random moments and resumed each time ends
# with exactly the state of an uninterrupted run; SIGINT writes a checkpoint and exits cleanly.
. tests/cli/lib.sh
D=$T/data
tiny_training_set $D 64
TRAIN="$DIFFUSE train --data $D --unet-config $T/unet.json --max-steps 300 --batch-size 32 --checkpoint-every 7 --sample-every 0 --threads 2 -q"

start=$(date +%s%N)
check "uninterrupted run" $TRAIN --out $T/ref
run_ms=$(( ($(date +%s%N) - start) / 1000000 ))
kills=0
i=0
while [ $i -lt 20 ]; do
    $TRAIN --out $T/run --resume &
    pid=$!
    # a random moment 0.9% to 2.9% of the uninterrupted run's time after the start: each resumed
    # run carries on from the last checkpoint, and the 20 together last about 38% of that one (58%
    # at most), so they cannot reach its end however fast the machine, nor when a busy host slowed
    # the timed run down
    ms=$(( run_ms * ($(od -An -N1 -tu1 /dev/urandom | tr -dc 0-9) % 21 + 9) / 1000 ))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    # whatever checkpoint is there is whole: it loads
    if [ -f $T/run/train_state.safetensors ]; then
        check "checkpoint after kill $i loads" sh -c "$DIFFUSE info -m $T/run >/dev/null"
    fi
    i=$((i + 1))
done
check "killed 20 times" [ $kills -eq 20 ]
check "the killed runs had not finished" sh -c "! cmp -s $T/ref/train_state.safetensors $T/run/train_state.safetensors"
check "resumed run finishes" $TRAIN --out $T/run --resume
check "same final state as the uninterrupted run" cmp -s $T/ref/train_state.safetensors $T/run/train_state.safetensors
check "no temporary files left" sh -c "! ls -R $T/run | grep -q '\.tmp\.'"
check "same exported weights" cmp -s $T/ref/unet/diffusion_pytorch_model.safetensors $T/run/unet/diffusion_pytorch_model.safetensors

# SIGINT: a checkpoint, then a clean exit
$DIFFUSE train --data $D --unet-config $T/unet.json --max-steps 100000 --batch-size 8 --checkpoint-every 100000 --sample-every 0 --out $T/int 2>$T/int.log &
pid=$!
sleep 1
kill -INT $pid
wait $pid
check "SIGINT exits 0" [ $? -eq 0 ]
check "SIGINT says it stopped" grep -q "stopped" $T/int.log
check "SIGINT left a checkpoint" sh -c "$DIFFUSE info -m $T/int >/dev/null"
summary cli_kill
