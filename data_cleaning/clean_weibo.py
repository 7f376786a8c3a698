#!/usr/bin/env python
"""Clean the text field of a Weibo JSON/JSONL/CSV file (a thin wrapper of ``toolkit.cleaning_cli``).

    python data_cleaning/clean_weibo.py ../shared/data/smp2020_ewect/virus_train.json runs/virus_train.clean.json

Runs from a fresh clone without installing: the repository root is put on ``sys.path`` when ``toolkit`` is not
importable. ``--help`` lists the options (they mirror ``toolkit.cleaning.Cleaner``).
"""

import sys
from pathlib import Path

try:
    from toolkit.cleaning_cli import PROG, main
except ModuleNotFoundError as err:
    if err.name != "toolkit":
        raise
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from toolkit.cleaning_cli import PROG, main
from toolkit.cli import run_cli

if __name__ == "__main__":
    run_cli(main, prog=PROG)
