"""Predict the emotion of Weibo posts with the model train.sh saved (a thin wrapper over toolkit.inference).

    python inference.py --input '你是个什么东西,垃圾' --device cpu
    python inference.py --model runs/weibo-emotion-zh-mini --file posts.txt --output predictions.jsonl

The post is cleaned and truncated exactly as in training (the saved tokenizer holds the model's cleaning options
and max_length). --model defaults to runs/weibo-emotion (train.sh's output).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # run from a fresh clone without installing

DEFAULT_MODEL = ROOT / "runs" / "weibo-emotion"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not {"-h", "--help"} & set(argv):
        if not any(a == "--model" or a.startswith("--model=") for a in argv):
            if not (DEFAULT_MODEL / "config.json").is_file():
                print(f"inference.py: no trained model at {DEFAULT_MODEL} yet. Train one with `sh train.sh`, "
                      "or pass --model DIR (a saved toolkit model directory).", file=sys.stderr)
                return 2
            argv = ["--model", str(DEFAULT_MODEL)] + argv
    from toolkit.inference import main as inference_main

    return inference_main(argv)


if __name__ == "__main__":
    from toolkit.cli import run_cli

    run_cli(main, prog="inference.py")
