#!/bin/sh
# Score a saved Weibo emotion model on labelled SMP2020 files: accuracy, macro-F1, a per-class report and a
# confusion-matrix PNG per file, written to $OUTPUT_DIR. Override any variable, and pass extra flags:
#   sh test.sh                                          # runs/weibo-emotion on virus_test and usual_test
#   MODEL_DIR=runs/weibo-emotion-zh-mini TEST="virus_test" sh test.sh
#   TEST=/path/to/labelled.json MAX_SAMPLES=200 DEVICE=cpu sh test.sh
set -eu
cd "$(dirname "$0")"

MODEL_DIR=${MODEL_DIR:-runs/weibo-emotion}
TEST=${TEST:-virus_test usual_test}    # space-separated split names (virus_test, usual_eval, ...) or JSON files
DATA=${DATA:-smp2020_ewect}
OUTPUT_DIR=${OUTPUT_DIR:-$MODEL_DIR/test}
DEVICE=${DEVICE:-auto}                 # auto: cuda when available
BATCH_SIZE=${BATCH_SIZE:-64}
MAX_LENGTH=${MAX_LENGTH:-}                # empty: the model's training max_length
MAX_SAMPLES=${MAX_SAMPLES:-}           # empty: every post
LAUNCH=${LAUNCH:-accelerate launch --num_processes 1}

if [ ! -f "$MODEL_DIR/config.json" ]; then
    echo "test.sh: no trained model in '$MODEL_DIR' (no config.json). Train one with 'sh train.sh' or set MODEL_DIR." >&2
    exit 2
fi
set -- --model "$MODEL_DIR" --output_dir "$OUTPUT_DIR" --dataset "$DATA" --device "$DEVICE" \
    --batch_size "$BATCH_SIZE" "$@"
[ -n "$MAX_LENGTH" ] && set -- "$@" --max_length "$MAX_LENGTH"
for split in $TEST; do set -- "$@" --test_file "$split"; done
[ -n "$MAX_SAMPLES" ] && set -- "$@" --max_samples "$MAX_SAMPLES"

echo "+ $LAUNCH -m toolkit.studies.weibo $*"
. recipes/launch.sh
launch test.sh $LAUNCH -m toolkit.studies.weibo "$@"
