# A full disk: every kind of output (PNG, npy, checkpoints) fails with one line and exit 1, and
# leaves the previous file intact and no temporary file. A disk fills two ways here: a 64 KiB
# tmpfs where mounting is allowed (root with CAP_SYS_ADMIN), and always a file-size limit
# (ulimit -f: writes past it fail with EFBIG), which takes the same error paths.
. tests/cli/lib.sh
M=tests/fixtures/unet/tiny/model
S="$DIFFUSE sample -m $M -q --steps 2"
D=$T/data
tiny_training_set $D 64
TRAIN="$DIFFUSE train --data $D --unet-config $T/unet.json --batch-size 4 --sample-every 0 --threads 1 -q"

# full_run NAME DIR LIMIT COMMAND...: in DIR the command fails with exit 1 and one line on stderr
# naming a write error; the files already in DIR keep their bytes; no temporary file is left.
full_run() {
    name=$1 dir=$2 limit=$3; shift 3
    (cd $dir && find . -type f | sort | xargs -r md5sum) >$T/before
    if [ "$limit" = "-" ]; then "$@" >/dev/null 2>$T/err; rc=$?
    else (trap '' XFSZ; ulimit -f "$limit"; exec "$@") >/dev/null 2>$T/err; rc=$?; fi
    (cd $dir && find . -type f | sort | xargs -r md5sum) >$T/after
    if [ $rc -eq 1 ] && [ "$(wc -l <$T/err)" -eq 1 ] && grep -q -i -E "writ|space|large|fsync|disk" $T/err &&
       cmp -s $T/before $T/after && ! find $dir -name '*.tmp.*' | grep -q .; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $name: exit $rc, stderr: $(head -c 300 $T/err)" >&2
    fi
}

# previous outputs, written with room to spare
mkdir -p $T/out
check "first PNG" $S -n 4 -o $T/out/grid.png
check "first npy" $S -n 4 --output-npy $T/out/x.npy
check "first checkpoint" $TRAIN --max-steps 2 --checkpoint-every 1 --out $T/run
# ulimit -f counts 1024-byte blocks; the PNG and npy need more than 2 KiB, a checkpoint far more
full_run "PNG on a full disk (file-size limit)" $T/out 1 $S -n 4 -o $T/out/grid.png
full_run "npy on a full disk (file-size limit)" $T/out 2 $S -n 4 --output-npy $T/out/x.npy
full_run "checkpoint on a full disk (file-size limit)" $T/run 8 $TRAIN --max-steps 4 --checkpoint-every 1 --out $T/run --resume
check "the checkpoint still resumes" $TRAIN --max-steps 3 --checkpoint-every 1 --out $T/run --resume

# a real ENOSPC, where this machine lets us mount a small tmpfs
mkdir -p $T/small
if mount -t tmpfs -o size=64k tmpfs $T/small 2>/dev/null; then
    check "PNG fits on the tmpfs" $S -n 1 -o $T/small/one.png
    head -c 1000000 /dev/zero >$T/small/filler 2>/dev/null # fills it: ENOSPC
    full_run "PNG on a full tmpfs" $T/small - $S -n 4 -o $T/small/one.png
    full_run "npy on a full tmpfs" $T/small - $S -n 16 --output-npy $T/small/x.npy
    umount $T/small
else
    echo "test_full_disk: cannot mount a tmpfs here; the file-size limit cases stand in for it"
fi
summary cli_full_disk
