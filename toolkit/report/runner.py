"""Run a recipe or bench through its ``main(argv)`` into a folder of its own, or reuse the folder of an earlier run.

A folder is reused when it holds ``report_run.json`` naming the same command (script and every flag) and the
outputs the script promises (a recipe's results.json, whose run_config.json must name the same command too).
Anything else in a report-owned folder is a stale or broken run: the folder is removed and the script runs again.
While the script runs, ``sys.argv`` is its own command line, so its run_config.json and model card name the command
that made it, and its stdout goes to ``<folder>.log`` beside the folder.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import logging
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..evaluation import reports

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
RECORD = "report_run.json"


@dataclass
class Run:
    """One finished run: its command, folder, what it returned or wrote, and when and where it ran."""

    script: str  # relative to the checkout: recipes/imdb.py, bench/bench_methods.py
    argv: list[str]
    folder: Path
    reused: bool
    record: dict = field(default_factory=dict)  # report_run.json: command, finished, seconds, hardware

    @property
    def command(self) -> str:
        return command_line(self.script, self.argv)

    @property
    def results(self) -> dict:
        """The recipe's results.json."""
        return json.loads((self.folder / "results.json").read_text(encoding="utf-8"))

    def json(self, name: str) -> dict:
        return json.loads((self.folder / name).read_text(encoding="utf-8"))


def command_line(script: str, argv: Sequence[str]) -> str:
    return shlex.join(["python", script, *map(str, argv)])


def relative(path: Path) -> str:
    """A path as the reader types it: relative to the checkout when inside it."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_script(script: str):
    """``<checkout>/<script>`` as a module (its folder on sys.path for its own imports), for its ``main(argv)``."""
    path = ROOT / script
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    name = f"report_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script loads
    spec.loader.exec_module(module)
    return module


def reusable(folder: Path, command: str, outputs: Sequence[str], recipe: bool) -> bool:
    """Whether ``folder`` holds a finished run of exactly ``command``."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if record.get("command") != command or not all((folder / name).is_file() for name in outputs):
        return False
    if recipe:
        try:
            config = json.loads((folder / "run_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return config.get("command") == " ".join([Path(record["script"]).name, *record["argv"]])
    return True


def write_record(folder: Path, script: str, argv: list[str], command: str, start: float) -> dict:
    """Write ``folder/report_run.json`` for a run that began at ``start`` (``time.perf_counter()``) and ended now."""
    record = {"script": script, "argv": argv, "command": command, "seconds": round(time.perf_counter() - start, 1),
              "finished": datetime.datetime.now().isoformat(timespec="seconds"), "hardware": reports.hardware()}
    reports.write_json(folder / RECORD, record)
    return record


@contextlib.contextmanager
def script_argv(script: str, argv: Sequence[str]):
    saved = sys.argv
    sys.argv = [script, *map(str, argv)]
    try:
        yield
    finally:
        sys.argv = saved


def run_script(script: str, argv: Sequence[str], folder: Path, outputs: Sequence[str] = ("results.json",),
               output_flag: str | None = "--output_dir") -> Run:
    """Run ``script``'s ``main(argv + [output_flag, folder])`` unless ``folder`` already holds that run."""
    folder = Path(folder)
    argv = [*map(str, argv), *([output_flag, relative(folder)] if output_flag else [])]
    command = command_line(script, argv)
    recipe = script.startswith("recipes/")
    if reusable(folder, command, outputs, recipe):
        logger.info("reusing %s", relative(folder))
        return Run(script, argv, folder, True, json.loads((folder / RECORD).read_text(encoding="utf-8")))
    if folder.exists():
        logger.warning("%s holds another or unfinished run: running it again", relative(folder))
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    print(f"[report] {command}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    log = folder.parent / f"{folder.name}.log"
    with open(log, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out), script_argv(script, argv):
        load_script(script).main(argv)
    missing = [name for name in outputs if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"{command} finished without writing {', '.join(missing)} in {relative(folder)}; see "
                           f"{relative(log)}")
    return Run(script, argv, folder, False, write_record(folder, script, argv, command, start))


def run_function(name: str, settings: dict, folder: Path, compute) -> Run:
    """A computation of the report itself (the TF-IDF baseline): ``compute()`` -> dict, kept in
    ``folder/result.json`` and reused while ``settings`` stay the same."""
    folder = Path(folder)
    command = f"{name} {json.dumps(settings, sort_keys=True)}"
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
        if record.get("command") == command and (folder / "result.json").is_file():
            return Run(name, [], folder, True, record)
    except (OSError, ValueError):
        pass
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    reports.write_json(folder / "result.json", compute())
    return Run(name, [], folder, False, write_record(folder, name, [], command, start))
