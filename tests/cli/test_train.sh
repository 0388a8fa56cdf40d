# diffuse train at the command line: a NaN or infinite loss stops the run before any update (or,
# with --skip-nan, skips updates and says so), never leaving NaN weights; bad data is refused
# before training starts.
. tests/cli/lib.sh
D=$T/data
tiny_training_set $D 16
TRAIN="$DIFFUSE train --data $D --unet-config $T/unet.json --batch-size 4 --sample-every 0 --threads 2 -q"
# min-SNR-γ weighting divides by the SNR, which zero terminal SNR makes 0 at the last timestep
# (as in diffusers): with 10 timesteps a third of the batches get a NaN loss
echo '{"_class_name": "DDPMScheduler", "num_train_timesteps": 10, "rescale_betas_zero_snr": true}' >$T/zsnr.json
NANS="--scheduler-config $T/zsnr.json --snr-gamma 5 --max-steps 30 --checkpoint-every 5"

$TRAIN $NANS --out $T/stop 2>$T/stop.log
check "NaN loss: exit 1" [ $? -eq 1 ]
check "NaN loss: one line naming the step" sh -c "[ \$(wc -l <$T/stop.log) -eq 1 ] && grep -q 'NaN or infinite at step [0-9]' $T/stop.log"

$DIFFUSE train --data $D --unet-config $T/unet.json --batch-size 4 --sample-every 0 --threads 2 $NANS --out $T/skip --skip-nan 2>$T/skip.log
check "--skip-nan: finishes" [ $? -eq 0 ]
check "--skip-nan: says how many updates it skipped" grep -q "updates skipped (NaN/inf)" $T/skip.log
check "--skip-nan: the weights written are finite" sh -c "$DIFFUSE info -m $T/skip >/dev/null"
check "--help lists --skip-nan" sh -c "$DIFFUSE train --help | grep -q -- --skip-nan"

OUT=$T/never/model_index.json
expect_fail "missing data" 1 "nope" $OUT -- $TRAIN --data $T/nope --out $T/never --max-steps 1
mkdir -p $T/empty
expect_fail "empty image directory" 2 "empty" $OUT -- $TRAIN --data $T/empty --out $T/never --max-steps 1
mkdir -p $T/trunc && head -c 500 $D/train-images-idx3-ubyte >$T/trunc/train-images-idx3-ubyte && cp $D/train-labels-idx1-ubyte $T/trunc/
expect_fail "truncated idx" 2 "train-images" $OUT -- $TRAIN --data $T/trunc --out $T/never --max-steps 1
expect_fail "batch size 0" 2 "batch" $OUT -- $TRAIN --batch-size 0 --out $T/never
summary cli_train
