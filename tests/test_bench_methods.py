"""The methods ablation bench: row planning, resumption from a finished run's results.json, mean ± std tables,
and (slow) the smoke ablation end to end on a tiny random BERT."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import bench_methods as bm  # noqa: E402


def _plans(tmp_path, *extra):
    args = bm.parse(["--smoke", "--out", str(tmp_path), *extra])
    return args, bm.dataset_plans(args)


def _fake_run(row, accuracy, macro_f1, wall=10.0, weibo=False):
    row.folder.mkdir(parents=True, exist_ok=True)
    results = {"final": {"accuracy": accuracy, "macro_f1": macro_f1}, "train_seconds": wall - 1, "epochs": [{}],
               "tasks": [{"name": "label"}], "train_examples": 64}
    if weibo:
        results["test"] = {"virus_test": {"label": {"accuracy": accuracy - 0.1, "macro_f1": macro_f1 - 0.1}}}
    (row.folder / "results.json").write_text(json.dumps(results))
    (row.folder / "bench_row.json").write_text(json.dumps({"wall_s": wall, "hardware": "CPU (made elsewhere)"}))


def test_screen_plans_one_row_per_method_in_folders_named_by_settings(tmp_path):
    args, plans = _plans(tmp_path, "--methods", ",".join(bm.METHODS))
    assert list(plans) == ["imdb", "weibo"]
    rows = bm.screen_rows(plans["imdb"], args.methods, 42, tmp_path)
    assert [r.method for r in rows] == list(bm.METHODS)
    assert len({r.folder for r in rows}) == len(rows)
    assert all(r.folder.parent == tmp_path / "runs" / "imdb" for r in rows)
    # the same settings give the same folder; another seed or size another one
    again = bm.screen_rows(plans["imdb"], args.methods, 42, tmp_path)
    assert [r.folder for r in again] == [r.folder for r in rows]
    assert bm.screen_rows(plans["imdb"], ["baseline"], 43, tmp_path)[0].folder != rows[0].folder
    full = bm.dataset_plans(bm.parse(["--out", str(tmp_path)]))  # the default sizes, not the smoke's
    assert bm.screen_rows(full["imdb"], ["baseline"], 42, tmp_path)[0].folder != rows[0].folder
    by_name = {r.method: r.flags for r in rows}
    assert by_name["baseline"] == []
    # the smoke size has 2 steps per epoch: unfreezing every step at the least, the encoder open after one epoch
    assert by_name["gradual_unfreezing"] == ["--gradual_unfreezing", "true", "--unfreeze_every_steps", "1"]
    weibo = {r.method: r.flags for r in bm.screen_rows(plans["weibo"], ["stlr"], 42, tmp_path)}
    assert weibo["stlr"][-2:] == ["--warmup_epochs", "0"]  # STLR replaces the recipe's warm-up
    assert "--warmup_epochs" not in by_name["stlr"]


def test_confirm_takes_methods_that_beat_the_baseline_and_their_combination(tmp_path):
    args, plans = _plans(tmp_path, "--methods", "baseline,fgm,rdrop,focal", "--datasets", "imdb")
    plan = plans["imdb"]
    screened = bm.screen_rows(plan, args.methods, 42, tmp_path)
    for row, f1 in zip(screened, (0.80, 0.82, 0.79, 0.85)):
        row.scores = {"selection_macro_f1": f1}
    assert bm.pick_best(screened, top=2) == ["focal", "fgm"]
    assert bm.pick_best(screened, top=1) == ["focal"]
    confirmed = bm.confirm_rows(plan, ["focal", "fgm"], [1, 2, 3], tmp_path)
    assert [(r.method, r.seed) for r in confirmed] == [
        (m, s) for m in ("baseline", "focal", "fgm", "focal+fgm") for s in (1, 2, 3)]
    assert confirmed[-1].flags == ["--loss", "focal", "--focal_gamma", "2.0", "--adversarial", "fgm",
                                   "--adversarial_epsilon", "1.0"]
    for row, f1 in zip(screened, (0.80, 0.78, 0.79, 0.70)):  # nothing beats the baseline: the best one goes on
        row.scores = {"selection_macro_f1": f1}
    assert bm.pick_best(screened, top=2) == ["rdrop"]
    assert [r.method for r in bm.confirm_rows(plan, ["rdrop"], [1], tmp_path)] == ["baseline", "rdrop"]


def test_weibo_screens_its_own_method_list_unless_methods_is_given(tmp_path):
    args = bm.parse(["--out", str(tmp_path)])
    assert args.methods == list(bm.METHODS)
    assert args.weibo_methods == list(bm.WEIBO_METHODS) and "rdrop" not in args.weibo_methods
    args = bm.parse(["--out", str(tmp_path), "--weibo_methods", "fgm"])
    assert args.weibo_methods == ["baseline", "fgm"]
    args = bm.parse(["--out", str(tmp_path), "--methods", "focal"])
    assert args.methods == args.weibo_methods == ["baseline", "focal"]
    with pytest.raises(SystemExit):
        bm.parse(["--out", str(tmp_path), "--weibo_methods", "dropout"])


def test_combine_refuses_two_values_of_one_flag(monkeypatch):
    monkeypatch.setitem(bm.METHODS, "decay95", ["--layer_lr_decay", "0.95"])
    assert bm.combine(["layer_lr_decay", "decay95"]) is None
    assert bm.combine(["layer_lr_decay", "rdrop"]) == ["--layer_lr_decay", "0.9", "--rdrop_alpha", "1.0"]


def test_finished_runs_are_reused_not_rerun(tmp_path, monkeypatch):
    args, plans = _plans(tmp_path, "--datasets", "imdb", "--stage", "all", "--seeds", "1,2")
    for row, f1 in zip(bm.screen_rows(plans["imdb"], args.methods, 1, tmp_path), (0.6, 0.7)):
        _fake_run(row, f1 + 0.05, f1)
    for row in bm.confirm_rows(plans["imdb"], ["label_smoothing"], [2], tmp_path):
        _fake_run(row, 0.9, 0.8, wall=30.0)

    def refuse(name):
        raise AssertionError(f"recipe {name} ran although every run had results.json")

    monkeypatch.setattr(bm, "load_recipe", refuse)
    report = bm.main(["--smoke", "--datasets", "imdb", "--seeds", "1,2", "--out", str(tmp_path)])
    imdb = report["datasets"]["imdb"]
    assert imdb["best"] == ["label_smoothing"]
    summary = {s["method"]: s for s in imdb["confirm"]["summary"]}
    assert summary["label_smoothing"]["seeds"] == [1, 2]
    assert summary["label_smoothing"]["macro_f1"]["values"] == [0.7, 0.8]
    assert summary["label_smoothing"]["macro_f1"]["mean"] == pytest.approx(0.75)
    assert summary["label_smoothing"]["macro_f1"]["std"] == pytest.approx(0.0707107, rel=1e-5)  # sample std
    assert summary["baseline"]["wall_s"]["values"] == [10.0, 30.0]
    saved = json.loads((tmp_path / "methods.json").read_text())
    assert saved["datasets"]["imdb"]["best"] == ["label_smoothing"]
    assert saved["datasets"]["imdb"]["splits"] == {"reported": "test", "selection": "test"}
    assert saved["hardware"] == "CPU (made elsewhere)"  # the runs' machine, not the one that gathered them
    text = (tmp_path / "methods.md").read_text()
    row = "| label_smoothing | --label_smoothing_factor 0.1 | 2 | 0.8250 ± 0.1061 | 0.7500 ± 0.0707 | 20 ± 14 |"
    assert row in text
    assert "| baseline | - | 1 | 0.6500 | 0.6000 | 10 |" in text  # the screen's single seed: no spread


def test_weibo_reports_virus_test_and_ranks_by_virus_eval(tmp_path):
    args, plans = _plans(tmp_path, "--datasets", "weibo")
    row = bm.screen_rows(plans["weibo"], ["baseline"], 42, tmp_path)[0]
    _fake_run(row, 0.7, 0.5, weibo=True)
    scores = bm.read_scores(row, plans["weibo"])
    assert (scores["accuracy"], scores["macro_f1"]) == (pytest.approx(0.6), pytest.approx(0.4))
    assert scores["selection_macro_f1"] == 0.5
    row.scores = scores
    assert "| baseline | - | 1 | 0.6000 | 0.4000 | 0.5000 | 10 |" in bm.markdown([row], plans["weibo"], "t")


def test_mean_std_format():
    assert bm.fmt([0.8, 0.9, 1.0]) == "0.9000 ± 0.1000"
    assert bm.fmt([0.8]) == "0.8000"
    assert bm.mean_std([2.0, 4.0]) == (3.0, pytest.approx(2 ** 0.5))


@pytest.mark.slow
def test_smoke_ablation_runs_the_recipes(tmp_path, tiny_bert):
    argv = ["--smoke", "--imdb_model", str(tiny_bert), "--weibo_model", str(tiny_bert), "--encoder_layers", "2",
            "--seeds", "1,2", "--out", str(tmp_path)]
    report = bm.main(argv)
    for name in ("imdb", "weibo"):
        entry = report["datasets"][name]
        assert [r["method"] for r in entry["screen"]["rows"]] == list(bm.SMOKE_METHODS)
        confirm = entry["confirm"]["rows"]
        assert {r["seed"] for r in confirm} == {1, 2}
        for r in confirm:
            assert 0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1 and r["wall_s"] > 0
            assert not list(Path(r["folder"]).glob("*.safetensors"))  # weights removed after reading the scores
    assert report["datasets"]["imdb"]["screen"]["rows"][0]["train_examples"] == 64
    # a second call finds every run done
    started = sorted(p.stat().st_mtime for p in tmp_path.glob("runs/*/*/results.json"))
    bm.main(argv)
    assert sorted(p.stat().st_mtime for p in tmp_path.glob("runs/*/*/results.json")) == started
