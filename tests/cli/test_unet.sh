# diffuse unet / info: a good run, --help, and bad input of every kind (one line, exit 2, no output).
. tests/cli/lib.sh
FIX=tests/fixtures/unet/tiny
CASE=$FIX/cases/b2_int_t10_t999
OUT=$T/out.npy

# A good run writes a float32 (2, 3, 16, 16) npy: 128-byte header + 6144 bytes.
check "unet runs" $DIFFUSE unet -m $FIX/model --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $OUT --threads 2
check "unet output size" [ "$(wc -c <$OUT)" -eq $((128 + 2 * 3 * 16 * 16 * 4)) ]
check "unet --dtype bf16 runs" $DIFFUSE unet -m $FIX/model --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $T/bf16.npy --dtype bf16
check "bf16 output differs from f32" sh -c "! cmp -s $OUT $T/bf16.npy"
check "info runs" sh -c "$DIFFUSE info -m $FIX/model >$T/info"
check "info counts parameters" grep -q "parameters: 702499" $T/info
check "info gives FLOPs" grep -q "GFLOP" $T/info
for cmd in unet info; do
    check "$cmd --help" sh -c "$DIFFUSE $cmd --help | grep -q usage"
done
check "top --help" sh -c "$DIFFUSE --help | grep -q commands"

# Bad arguments
expect_fail "unknown command" 2 "unknown command" $OUT -- $DIFFUSE frobnicate
expect_fail "unknown option" 2 "unknown option '--bogus'" $OUT -- $DIFFUSE unet --bogus
expect_fail "missing required" 2 "required" $OUT -- $DIFFUSE unet -m $FIX/model --output $OUT
expect_fail "bad threads" 2 "threads" $OUT -- $DIFFUSE unet -m $FIX/model --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $OUT --threads 0
expect_fail "bad dtype" 2 "--dtype must be f32 or bf16" $OUT -- $DIFFUSE unet -m $FIX/model --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $OUT --dtype f64
expect_fail "no model dir" 1 "$T/nowhere" $OUT -- $DIFFUSE unet -m $T/nowhere --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $OUT

# Model directories broken in one way each, made from the tiny fixture.
mk() { rm -rf "$T/m"; mkdir -p "$T/m"; cp $FIX/model/config.json $FIX/model/diffusion_pytorch_model.safetensors "$T/m/"; }
run() { $DIFFUSE unet -m "$T/m" --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $OUT; }
ST=$T/m/diffusion_pytorch_model.safetensors
# st HEADER NBYTES: a safetensors file with that JSON header and NBYTES zero data bytes
st() {
    n=$(printf '%s' "$1" | wc -c)
    printf "\\$(printf %03o $((n & 255)))\\$(printf %03o $((n >> 8 & 255)))\\000\\000\\000\\000\\000\\000" >$ST
    printf '%s' "$1" >>$ST
    head -c "$2" /dev/zero >>$ST
}

mk; head -c 100 $FIX/model/diffusion_pytorch_model.safetensors >$ST
expect_fail "truncated header" 2 "safetensors" $OUT -- run
mk; head -c 5 $FIX/model/diffusion_pytorch_model.safetensors >$ST
expect_fail "shorter than the length field" 2 "safetensors" $OUT -- run
mk; head -c 200000 $FIX/model/diffusion_pytorch_model.safetensors >$ST
expect_fail "truncated data" 2 "safetensors" $OUT -- run
mk; printf '\377\377\000\000\000\000\000\000{}' >$ST
expect_fail "header length beyond the file" 2 "safetensors" $OUT -- run
mk; printf '\000\000\000\000\000\000\000\000' >$ST
expect_fail "header length 0" 2 "safetensors" $OUT -- run
mk; st '{}' 0
expect_fail "no tensors" 2 "missing" $OUT -- run
mk; st '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8
expect_fail "only an unknown tensor" 2 "missing" $OUT -- run
mk; st '{"conv_in.bias":{"dtype":"Q7","shape":[32],"data_offsets":[0,128]}}' 128
expect_fail "unknown dtype" 2 "Q7" $OUT -- run
mk; st '{"conv_in.bias":{"dtype":"F32","shape":[32],"data_offsets":[0,999]}}' 128
expect_fail "offsets past the end" 2 "safetensors" $OUT -- run
mk; st '{"conv_in.bias":{"dtype":"F32","shape":[32],"data_offsets":[0,128]},"conv_in.weight":{"dtype":"F32","shape":[32],"data_offsets":[64,192]}}' 192
expect_fail "overlapping offsets" 2 "safetensors" $OUT -- run
mk; st '{"conv_in.bias":{"dtype":"F32","shape":[31],"data_offsets":[0,128]}}' 128
expect_fail "byte count does not match the shape" 2 "safetensors" $OUT -- run
mk; st '{"conv_in.bias":{"dtype":"F32","shape":[32],"data_offsets":[128,0]}}' 128
expect_fail "offsets backwards" 2 "safetensors" $OUT -- run

mk; size=$(wc -c <$ST); printf '\000\000\300\177' | dd of=$ST bs=1 seek=$((size - 4)) conv=notrunc 2>/dev/null
expect_fail "NaN weights" 2 "NaN or infinite" $OUT -- run
mk; printf '{"in_channels": 3,' >$T/m/config.json
expect_fail "malformed config" 2 "config.json.*JSON" $OUT -- run
mk; sed -i 's/"DownBlock2D"/"CrossAttnDownBlock2D"/' $T/m/config.json
expect_fail "unsupported block" 2 "CrossAttnDownBlock2D" $OUT -- run
mk; sed -i 's/"silu"/"tanhshrink"/' $T/m/config.json
expect_fail "unsupported activation" 2 "tanhshrink" $OUT -- run
mk; sed -i 's/"layers_per_block": 1/"layers_per_block": 2/' $T/m/config.json
expect_fail "config needs more tensors" 2 "missing|config needs" $OUT -- run
mk; sed -i 's/"norm_num_groups": 8/"norm_num_groups": 7/' $T/m/config.json
expect_fail "channels not divisible by groups" 2 "divisible" $OUT -- run
mk; sed -i 's/"in_channels": 3/"in_channels": 1000000000/' $T/m/config.json
expect_fail "absurd channel count" 2 "in_channels" $OUT -- run
mk; sed -i 's/"in_channels": 3/"in_channels": 4/' $T/m/config.json
expect_fail "wrong tensor shape" 2 "conv_in.weight" $OUT -- run
mk; rm $T/m/config.json
expect_fail "no config" 1 "config.json" $OUT -- run

# Bad inputs to a good model
M="$DIFFUSE unet -m $FIX/model"
printf '\223NUMPY\001\000v\000{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': True, '"'"'shape'"'"': (1, 3, 16, 16), }' >$T/f.npy
expect_fail "fortran-order input" 2 "f.npy" $OUT -- $M --input $T/f.npy --timesteps $CASE/timesteps.npy --output $OUT
expect_fail "timesteps as input (wrong rank)" 2 "timesteps.npy" $OUT -- $M --input $CASE/timesteps.npy --timesteps $CASE/timesteps.npy --output $OUT
expect_fail "wrong channel count" 2 "fashion.*sample.npy" $OUT -- $M --input tests/fixtures/unet/fashion/cases/b2_int_t10_t999/sample.npy --timesteps $CASE/timesteps.npy --output $OUT
expect_fail "labels on an unconditional model" 2 "unconditional" $OUT -- $M --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --class-labels $CASE/timesteps.npy --output $OUT
expect_fail "sample as timesteps" 2 "timesteps" $OUT -- $M --input $CASE/sample.npy --timesteps $CASE/sample.npy --output $OUT
expect_fail "output directory missing" 1 "$T/no/such/dir" $T/no/such/dir/o.npy -- $M --input $CASE/sample.npy --timesteps $CASE/timesteps.npy --output $T/no/such/dir/o.npy
summary cli_unet
