"""The whole report: the profile's sections in order, REPORT.md with its pictures, and REPORT.html."""

from __future__ import annotations

import datetime
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..evaluation import reports
from . import html, sections
from .profiles import PROFILES, with_models
from .runner import relative
from .tiny import tiny_encoder

logger = logging.getLogger(__name__)


@dataclass
class ReportArguments:
    """The report command's options."""

    profile: str = field(default="cpu", metadata={"help": "tiny (test suite, seconds), cpu (a 2-core CPU, at most an "
                                                          "hour) or full (the studies' sizes, a GPU)."})
    output_dir: str | None = field(default=None, metadata={"help": "Report folder (default reports/<date>)."})
    runs_dir: str = field(default="reports/runs", metadata={"help": "Run folders, one per run under "
                                                                    "<runs_dir>/<profile>/<section>/; reused when "
                                                                    "their recorded command matches."})
    sections: list[str] = field(default_factory=list, metadata={"help": "Only these sections (default all): "
                                                                        "imdb layers weibo multitask rating methods."})

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise ValueError(f"--profile {self.profile!r} is not one of {', '.join(PROFILES)}.")
        unknown = [n for n in self.sections if n not in sections.SECTIONS]
        if unknown:
            raise ValueError(f"--sections {' '.join(unknown)}: unknown; choose from {' '.join(sections.SECTIONS)}.")
        if self.output_dir is None:
            self.output_dir = str(Path("reports") / datetime.date.today().isoformat())


class GlyphWatch(logging.Handler):
    """Collects save_figure's warnings about characters without a glyph (they would be drawn as boxes)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.missing: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "no glyph" in record.getMessage():
            self.missing.append(record.getMessage().split(":")[0])


def build_report(profile: str, out_dir: str | Path, runs_dir: str | Path, only: Sequence[str] | None = None,
                 command: str = "python recipes/report.py") -> dict:
    """Run (or reuse) every section of ``profile`` and write ``out_dir``/REPORT.md, REPORT.html and pictures/.
    Returns the paths and, per section, its title and pictures."""
    font = reports.cjk_font()
    if font is None:
        raise ValueError("no CJK font is installed, so Chinese text in the pictures would be drawn as boxes; install "
                         "one (Debian: apt-get install fonts-wqy-microhei) and run the report again.")
    names = list(only or sections.SECTIONS)
    unknown = [n for n in names if n not in sections.SECTIONS]
    if unknown:
        raise ValueError(f"unknown section {', '.join(unknown)}; choose from {', '.join(sections.SECTIONS)}.")
    chosen = PROFILES[profile]
    out_dir, runs_dir = Path(out_dir), Path(runs_dir) / profile
    if chosen.name == "tiny":
        models = runs_dir / "models"
        chosen = with_models(chosen, relative(tiny_encoder("minilm", models / "tiny-en")),
                             relative(tiny_encoder(str(sections.ROOT.parent / "shared" / "models" / "zh-mini-mlm"),
                                                   models / "tiny-zh")))
    # The pictures are drawn into a staging folder and the report's files replaced only once every section is
    # built: a failed or interrupted invocation leaves the previous report whole.
    out_dir.mkdir(parents=True, exist_ok=True)
    staging, pictures = out_dir / ".pictures.partial", out_dir / "pictures"
    shutil.rmtree(staging, ignore_errors=True)
    ctx = sections.Context(chosen, runs_dir, staging)
    watch = GlyphWatch()
    logging.getLogger(reports.__name__).addHandler(watch)
    start = time.perf_counter()
    try:
        built = [sections.SECTIONS[name](ctx) for name in names]
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        logging.getLogger(reports.__name__).removeHandler(watch)
    for section in built:
        section.pictures = [pictures / p.name for p in section.pictures]
    minutes = (time.perf_counter() - start) / 60
    runs = list({run.folder: run for section in built for run in section.runs}.values())  # a run in two sections once
    run_minutes = sum(float(run.record.get("seconds", 0)) for run in runs) / 60
    reused = sum(run.reused for run in runs)
    today = datetime.date.today().isoformat()
    glyphs = ("none" if not watch.missing else
              f"**{', '.join(sorted(set(watch.missing)))}** (some characters drawn as boxes)")
    header = [
        f"# Seed studies report ({chosen.name} profile, {today})",
        f"Made by `{command}` in {minutes:.1f} min; its runs took {run_minutes:.1f} min when they ran "
        f"({reused} of {len(runs)} reused from earlier invocations); profile "
        f"{chosen.name}: {chosen.about}. Every number below is read from the results.json of the run named in its "
        "section; every picture is a run's PNG or is drawn from those numbers.",
        f"- Hardware of this invocation: {reports.hardware()}",
        f"- Font for the pictures' text: {font} (CJK); characters without a glyph while drawing: {glyphs}",
        f"- Encoders: English `{chosen.en_model}`, Chinese `{chosen.zh_model}`",
        "Sizes:", reports.markdown_table(chosen.sizes()),
    ]
    parts = ["\n\n".join(header)]
    for section in built:
        parts.append("\n\n".join([f"## {section.title}", sections.provenance(section), *section.body]))
    text = "\n\n".join(parts) + "\n"
    old = out_dir / ".pictures.old"
    shutil.rmtree(old, ignore_errors=True)
    if pictures.exists():
        pictures.rename(old)
    staging.mkdir(exist_ok=True)  # a report without pictures still gets an (empty) pictures/
    staging.rename(pictures)
    shutil.rmtree(old, ignore_errors=True)
    reports.write_text_atomic(out_dir / "REPORT.md", text)
    page = html.to_html(text, out_dir, f"Seed studies report ({chosen.name}, {today})")
    reports.write_text_atomic(out_dir / "REPORT.html", page)
    return {"markdown": out_dir / "REPORT.md", "html": out_dir / "REPORT.html", "font": font,
            "missing_glyphs": watch.missing,
            "sections": [{"title": s.title, "pictures": [str(p) for p in s.pictures]} for s in built]}
