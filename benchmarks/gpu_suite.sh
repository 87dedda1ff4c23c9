#!/usr/bin/env bash
# GPU measurements for the README's Performance section, in one short run.
#
# Run from the repository root on a machine with one CUDA GPU:
#
#     OUT=/path/to/results bash benchmarks/gpu_suite.sh
#
# Writes one JSON file per benchmark (and a .log with its stderr) into "$OUT/",
# plus nvidia-smi.txt and summary.txt. Every step has its own time limit, so the
# whole suite stays under about seven minutes; a step that fails or times out is
# reported in summary.txt and the suite goes on. Set PYTHON to pick the
# interpreter (default: python). SMOKE=1 DEVICE=cpu runs the same steps with tiny
# sizes, to check the script itself without a GPU.
#
# 1. Train step, DeCUR ResNet-50 at 224 px, batch 64: fp32 (NCHW) vs bf16
#    autocast + channels_last, in the same process, with a 5-step loss check.
# 2. DeCUR loss at N=256 and 1024, K=8192: reference K x K transcription vs ours
#    (the README's GPU loss table).
# 3. Train step, DeCUR ResNet-18, same comparison.
# 4. benchmarks/rda.py (residual deformable attention), if it exists.
# 5. Step breakdown, DeCUR ResNet-50 at 224 px, batch 64, batch already on the
#    GPU: fp32 and bf16 + channels_last (augmentation's share of the step), and
#    bf16 + channels_last with kornia's batched crop (--crop-mode resample).
# (The ours-vs-reference comparison, benchmarks/gpu_decur_vs_reference.py, takes
# several minutes and runs on its own.)
set -u

OUT="${OUT:-gpu_results}"
PYTHON="${PYTHON:-python}"
DEVICE="${DEVICE:-cuda}"
if [ "${SMOKE:-0}" = 1 ]; then
    STEP=(--batch-size 4 --size 32 --input-size 40 --projector-dims 64 64
          --warmup 1 --steps 1 --verify-steps 2)
    LOSS=(--k 64 --n 16 --repeats 1)
    BREAK=(--batch-size 4 --crop 32 --input-size 40 --projector-dims 64 64
           --warmup 1 --steps 1)
else
    STEP=(--batch-size 64 --size 224 --warmup 3 --steps 10 --verify-steps 5)
    LOSS=(--k 8192 --n 256 1024 --repeats 5)
    BREAK=(--batch-size 64 --crop 224 --warmup 3 --steps 10)
fi
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || echo 'nvidia-smi failed' >> "$SUMMARY"

# run NAME SECONDS ARGS...: python ARGS > $OUT/NAME.json, stderr to NAME.log.
run() {
    local name="$1" limit="$2"
    shift 2
    local start=$SECONDS
    timeout "$limit" "$PYTHON" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
    local status=$?
    echo "$name: exit $status after $((SECONDS - start)) s (limit $limit s)" \
        | tee -a "$SUMMARY"
}

run train_step_rn50 120 -m benchmarks.train_step --device "$DEVICE" \
    --model resnet50 --variants fp32 bf16+cl "${STEP[@]}"

run decur_loss 120 -m benchmarks.decur_loss --device "$DEVICE" --in-process "${LOSS[@]}"

run train_step_rn18 40 -m benchmarks.train_step --device "$DEVICE" \
    --model resnet18 --variants fp32 bf16+cl "${STEP[@]}"

if [ -f benchmarks/rda.py ]; then
    run rda 50 -m benchmarks.rda --device "$DEVICE"
else
    echo 'rda: skipped (benchmarks/rda.py not in this checkout)' | tee -a "$SUMMARY"
fi

run step_breakdown_rn50_fp32 60 -m benchmarks.step_breakdown --device "$DEVICE" \
    --model resnet50 --data device "${BREAK[@]}"

run step_breakdown_rn50_bf16_cl 60 -m benchmarks.step_breakdown --device "$DEVICE" \
    --model resnet50 --data device --precision bf16 --channels-last "${BREAK[@]}"

run step_breakdown_rn50_bf16_cl_resample 60 -m benchmarks.step_breakdown \
    --device "$DEVICE" --model resnet50 --data device --precision bf16 \
    --channels-last --crop-mode resample "${BREAK[@]}"

echo "results in $OUT/" | tee -a "$SUMMARY"
