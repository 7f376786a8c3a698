#!/bin/sh
# Fine-tune a Chinese BERT on SMP2020-EWECT Weibo emotion (six labels) with recipes/weibo_emotion.py.
# Works from a fresh clone (paths are relative to this folder). Override any variable, and pass extra flags:
#   sh train.sh                                              # zh-mini-mlm; GPU: zh_mini_mlm.yaml, CPU: cpu.yaml
#   MODEL=bert-base-chinese CONFIG=recipes/weibo_emotion/bert_base_chinese.yaml sh train.sh   # the study (hub)
#   MODEL=runs/zh-mlm-continued sh train.sh --class_weighting balanced                        # your own MLM model
#   MAX_TRAIN=300 MAX_EVAL=100 MAX_TEST=100 EPOCHS=1 sh train.sh --report_to none              # a quick check
set -eu
cd "$(dirname "$0")"

if [ -z "${CONFIG:-}" ]; then
    if python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
        CONFIG=recipes/weibo_emotion/zh_mini_mlm.yaml
    else
        CONFIG=recipes/weibo_emotion/cpu.yaml
    fi
fi
MODEL=${MODEL:-../shared/models/zh-mini-mlm}
OUTPUT_DIR=${OUTPUT_DIR:-runs/weibo-emotion}
DATA=${DATA:-smp2020_ewect}                      # folder name in ../shared/data, or a path
TRAIN=${TRAIN:-virus_train}
EVAL=${EVAL:-virus_eval}
TEST=${TEST:-virus_test usual_eval usual_test}   # space-separated split names or JSON files
EPOCHS=${EPOCHS:-}                               # empty: the config's
MAX_TRAIN=${MAX_TRAIN:-}                         # empty: every post
MAX_EVAL=${MAX_EVAL:-}
MAX_TEST=${MAX_TEST:-}
LAUNCH=${LAUNCH:-accelerate launch}              # e.g. "accelerate launch --config_file recipes/accelerate_configs/ddp.yaml"

set -- "$CONFIG" --model_name_or_path "$MODEL" --output_dir "$OUTPUT_DIR" --dataset "$DATA" \
    --train_split "$TRAIN" --eval_split "$EVAL" --test_splits $TEST "$@"
[ -n "$EPOCHS" ] && set -- "$@" --num_train_epochs "$EPOCHS"
[ -n "$MAX_TRAIN" ] && set -- "$@" --max_train_samples "$MAX_TRAIN"
[ -n "$MAX_EVAL" ] && set -- "$@" --max_eval_samples "$MAX_EVAL"
[ -n "$MAX_TEST" ] && set -- "$@" --max_test_samples "$MAX_TEST"

echo "+ $LAUNCH recipes/weibo_emotion.py $*"
. recipes/launch.sh
launch train.sh $LAUNCH recipes/weibo_emotion.py "$@"
