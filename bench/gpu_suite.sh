#!/usr/bin/env bash
# The GPU suite, one command (about 5 minutes on one H100/H200; the limit is 10): speed (bench_speed.py, base
# shape), MiniLM fine-tuned on full IMDB, frozen MiniLM features + probe, printed against the targets.
# Needs .gpu_suite/ from `python bench/prepare_gpu_suite.py` beside the checkout (no datasets package, no network).
#   bash bench/gpu_suite.sh            # the suite
#   bash bench/gpu_suite.sh --smoke    # tiny settings, any machine (checks that every part runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python bench/gpu_suite.py "$@"
