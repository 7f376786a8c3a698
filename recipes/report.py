"""One command reproduces the seed studies as a report: IMDB frozen vs fine-tuned, the per-layer probe and layer
choices, Weibo emotion, multi-task, Douban ratings and the methods ablation.

    python recipes/report.py --profile cpu     # a quiet 2-core CPU, at most an hour -> reports/<date>/REPORT.md
    python recipes/report.py --profile full    # the studies' sizes (GPU)
    python recipes/report.py --profile tiny --output_dir /tmp/report   # tiny random encoders, in seconds
    python recipes/report.py --sections imdb layers                    # some sections only

Every run goes through its recipe's (or bench's) main() into reports/runs/<profile>/<section>/<run>/ and is reused
while its recorded command matches; frozen runs share the feature cache ($TOOLKIT_CACHE). The report folder gets
REPORT.md, pictures/ and REPORT.html (self-contained: pictures embedded).
"""

import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a fresh clone without installing

from transformers import HfArgumentParser  # noqa: E402

from toolkit.cli import run_cli  # noqa: E402
from toolkit.report.build import ReportArguments, build_report  # noqa: E402


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    (args,) = HfArgumentParser(ReportArguments).parse_args_into_dataclasses(argv)
    result = build_report(args.profile, args.output_dir, args.runs_dir, args.sections or None,
                          command=shlex.join(["python", "recipes/report.py", *argv]))
    print(f"Report written to {result['markdown']} and {result['html']} (font: {result['font']})")
    return result


if __name__ == "__main__":
    run_cli(main)
