"""The report command (toolkit.report, recipes/report.py): the tiny profile end to end, every section and picture
present, runs reused on a second call, and the HTML page rendered by headless Chromium with every image loaded."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from toolkit.evaluation import reports
from toolkit.report import html as report_html
from toolkit.report.runner import run_script

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECTIONS = ("1. IMDB", "2. Per-layer probe", "3. Weibo", "4. Multi-task", "5. Ratings", "6. Fine-tuning methods")
PICTURES = ("imdb_epochs.png", "imdb_finetune_loss_curve.png", "layer_probe_imdb.png",
            "weibo_confusion_usual_test.png", "weibo_confusion_virus_test.png", "multitask.png",
            "multitask_loss_curve.png", "rating_confusion.png",
            "rating_confusion_off_by_one.png", "rating_histogram.png", "rating_tsne.png", "rating_attention.png",
            "methods.png")


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory, shared_data):
    """The tiny profile, run once for the module through the command's main()."""
    from toolkit.report.runner import load_script

    out = tmp_path_factory.mktemp("report")
    runs = tmp_path_factory.mktemp("report-runs")
    result = load_script("recipes/report.py").main(["--profile", "tiny", "--output_dir", str(out / "report"),
                                                    "--runs_dir", str(runs)])
    return {"out": out / "report", "runs": runs, "result": result}


def test_cjk_font_found():
    """A CJK font is installed and matplotlib sees it (the README's set-up and CI install one)."""
    assert reports.cjk_font() is not None, "install a CJK font: apt-get install fonts-wqy-microhei"


def test_tiny_report_has_every_section_and_picture(tiny_report):
    out, result = tiny_report["out"], tiny_report["result"]
    text = (out / "REPORT.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert [h.split(":")[0].split(" (")[0] for h in headings] == [
        "1. IMDB", "2. Per-layer probe and layer choices", "3. Weibo emotion", "4. Multi-task", "5. Ratings",
        "6. Fine-tuning methods ablation"]
    for name in SECTIONS:
        body = text.split(f"## {name}", 1)[1].split("\n## ", 1)[0]
        for item in ("python ", "- Hardware:", "- Date:", "- Seeds:", "- Run folders:"):
            assert item in body, (name, item)
        assert "|---|" in body, f"{name}: no table"
    linked = re.findall(r"!\[[^\]]*\]\(pictures/([^)]+)\)", text)
    assert sorted(linked) == sorted(PICTURES)
    for name in PICTURES:
        path = out / "pictures" / name
        assert path.stat().st_size > 5000, name
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"), dtype=float)
        assert pixels.std() > 5, f"{name} is blank"
    assert f"Font for the pictures' text: {result['font']}" in text
    assert result["missing_glyphs"] == [], result["missing_glyphs"]
    assert "mean ± sample std" in text and " ± " in text.split("## 2.", 1)[0]  # section 1 has two frozen seeds
    assert "0.772" in text and "0.739" in text and "93.84" in text and "87.01" in text


def test_a_failed_invocation_leaves_the_previous_report_whole(tiny_report, monkeypatch):
    """Pictures are drawn aside and swapped in at the end: an interrupted report keeps the last one intact."""
    from toolkit.report import build, sections

    out = tiny_report["out"]
    pictures = {p.name: p.read_bytes() for p in (out / "pictures").iterdir()}
    markdown, page = (out / "REPORT.md").read_bytes(), (out / "REPORT.html").read_bytes()

    def interrupted(ctx):
        raise KeyboardInterrupt

    monkeypatch.setitem(sections.SECTIONS, "methods", interrupted)  # the last section: the others have drawn
    with pytest.raises(KeyboardInterrupt):
        build.build_report("tiny", out, tiny_report["runs"])
    assert {p.name: p.read_bytes() for p in (out / "pictures").iterdir()} == pictures
    assert (out / "REPORT.md").read_bytes() == markdown and (out / "REPORT.html").read_bytes() == page
    assert not (out / ".pictures.partial").exists()


def test_second_call_reuses_every_run(tiny_report, capsys):
    """Run folders whose recorded command matches are reused: nothing trains again."""
    from toolkit.report.build import build_report

    result = build_report("tiny", tiny_report["out"].parent / "again", tiny_report["runs"])
    text = Path(result["markdown"]).read_text(encoding="utf-8")
    assert "[report] python" not in capsys.readouterr().err
    counts = re.findall(r"\((\d+) of (\d+) reused from earlier runs\)", text)
    assert len(counts) == 6 and all(a == b for a, b in counts), counts


def test_changed_settings_rerun(tmp_path, tiny_bert):
    """A folder holding a run of other settings is run again, not reused."""
    argv = ["--model_name_or_path", str(tiny_bert), "--mode", "frozen", "--max_length", "32", "--max_train_samples",
            "24", "--max_eval_samples", "16", "--num_train_epochs", "1", "--save_strategy", "no",
            "--report_to", "none", "--disable_tqdm", "true", "--learning_rate", "1e-3"]
    first = run_script("recipes/imdb.py", argv, tmp_path / "run")
    again = run_script("recipes/imdb.py", argv, tmp_path / "run")
    assert not first.reused and again.reused
    config = json.loads((tmp_path / "run" / "run_config.json").read_text(encoding="utf-8"))
    assert config["command"].startswith("imdb.py --model_name_or_path")  # the recipe's own command line
    changed = run_script("recipes/imdb.py", [*argv, "--seed", "7"], tmp_path / "run")
    assert not changed.reused and changed.results["train_examples"] == 24


def test_html_converter_embeds_images_and_tables(tmp_path):
    plt = reports.pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    reports.save_figure(fig, tmp_path / "p.png")
    page = report_html.to_html("# T\n\nsome `code` & **bold**\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n"
                               "```\nx < y\n```\n\n- item\n\n![alt](p.png)\n", tmp_path, "t")
    assert "<h1>T</h1>" in page and "<code>code</code> &amp; <strong>bold</strong>" in page
    assert "<td>&lt;2&gt;</td>" in page and "<pre><code>x &lt; y</code></pre>" in page and "<li>item</li>" in page
    assert re.search(r'<img alt="alt" src="data:image/png;base64,iVBOR', page)
    with pytest.raises(FileNotFoundError):
        report_html.to_html("![x](missing.png)\n", tmp_path, "t")


def test_html_in_headless_chromium(tiny_report, tmp_path):
    """Chromium renders the page: the screenshot is not blank and every <img> decoded (naturalWidth > 0)."""
    assert Path(CHROMIUM).is_file(), "Chromium is needed (Debian: apt-get install chromium); CI installs it"
    page = (tiny_report["out"] / "REPORT.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(PICTURES)
    assert not re.search(r'<img[^>]+src="(?!data:)', page), "an image is not embedded"
    probe = tmp_path / "probe.html"
    check = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
             " const bad = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;"
             " document.body.setAttribute('data-images', imgs.length + ' ' + bad); });</script>")
    probe.write_text(page.replace("</body>", check + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    marks = re.search(r'data-images="(\d+) (\d+)"', dom.stdout)
    assert marks, f"no image check in Chromium's DOM: {dom.stderr[-2000:]}"
    assert (int(marks.group(1)), int(marks.group(2))) == (len(PICTURES), 0)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,3000", probe.as_uri()],
                   capture_output=True, text=True, timeout=120)
    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.shape[0] >= 1000 and pixels.std() > 10, "the screenshot is blank"


def _summary(method: str, value: float) -> dict:
    stat = {"mean": value, "std": None, "values": [value]}
    return {"method": method, "flags": [], "seeds": [42], "accuracy": stat, "macro_f1": stat,
            "selection_macro_f1": stat, "wall_s": stat}


def test_methods_section_names_the_splits_the_bench_recorded():
    from toolkit.report import sections

    entry = {"splits": {"reported": "virus_test", "selection": "virus_eval"},
             "screen": {"summary": [_summary("baseline", 0.5)]}}
    body, tables = sections.methods_markdown({"datasets": {"weibo": entry}})
    assert "virus_test macro-F1" in body[1] and "virus_eval macro-F1 (selection)" in body[1]
    assert tables["weibo"][0] == "virus_test"
    entry["splits"] = {"reported": "test", "selection": "test"}  # selected on the reported split: no extra column
    body, _ = sections.methods_markdown({"datasets": {"imdb": entry}})
    assert "test macro-F1" in body[1] and "selection" not in body[1]
    del entry["splits"]
    with pytest.raises(ValueError, match="bench_methods.py --stage all"):
        sections.methods_markdown({"datasets": {"imdb": entry}})
