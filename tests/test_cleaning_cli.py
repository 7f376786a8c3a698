"""The ``clean-weibo`` CLI (``toolkit.cleaning_cli``) and its thin script: each format round-trips, the input is never
overwritten, malformed records fail without leaving a file, ``--drop-empty``, counts, and a real SMP2020 file."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("toolkit") is None:  # a plain `pytest tests/...` from a checkout without installing
    sys.path.insert(0, str(ROOT))  # (an installed toolkit, also the torch-free toolkit-cleaning, is tested as is)

from toolkit.cleaning import Cleaner  # noqa: E402
from toolkit.cleaning_cli import build_parser, main  # noqa: E402

SMP_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "smp2020_ewect"
RECORDS = [
    {"id": 1, "content": "ＨＥＬＬＯ！我很開心，@某人 http://t.cn/x", "label": "happy", "extra": [1, 2]},
    {"id": 2, "content": "http://t.cn/A6PqoMKY", "label": "neutral", "extra": None},
    {"id": 3, "content": "電影太棒[哈哈]😂", "label": "happy", "extra": {"k": "v"}},
    {"id": 4, "content": "已经是干净的", "label": "sad", "extra": "x"},
]
CLEANED = ["hello!我很开心,", "", "电影太棒[哈哈]😂", "已经是干净的"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_json_round_trip_keeps_ids_labels_and_other_fields(tmp_path, capsys):
    src, dst = tmp_path / "in.json", tmp_path / "out" / "clean.json"
    src.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    code, out, err = run(capsys, src, dst)
    assert code == 0 and err == ""
    records = json.loads(dst.read_text(encoding="utf-8"))
    assert [r["content"] for r in records] == CLEANED
    assert [{k: v for k, v in r.items() if k != "content"} for r in records] == [
        {k: v for k, v in r.items() if k != "content"} for r in RECORDS]
    assert list(records[0]) == ["id", "content", "label", "extra"]  # key order kept
    assert "read 4, changed 3, emptied 1, dropped 0, wrote 4" in out
    assert files_in(dst.parent) == ["clean.json"]  # no temporary file left


def test_jsonl_round_trip(tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, src, dst, "--emoticons", "text")
    assert code == 0
    records = [json.loads(line) for line in dst.read_text(encoding="utf-8").splitlines()]
    assert [r["content"] for r in records] == [CLEANED[0], "", "电影太棒 哈哈 😂", CLEANED[3]]
    assert [r["id"] for r in records] == [1, 2, 3, 4] and records[2]["extra"] == {"k": "v"}


def test_csv_round_trip_with_quoting_bom_and_a_named_column(tmp_path, capsys):
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [["label", "review", "note"], ["1", "很快，好吃，味道足！", "a,b"], ["0", "多行\n評論 http://t.cn/x", '"q"']]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    src.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8"))
    code, out, _ = run(capsys, src, dst)  # no --text-column: "review" is found in the header
    assert code == 0, out
    data = dst.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the byte-order mark is kept
    back = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert back == [rows[0], ["1", "很快,好吃,味道足!", "a,b"], ["0", "多行 评论", '"q"']]
    code, _, _ = run(capsys, src, tmp_path / "out2.csv", "--text-column", "note")
    assert code == 0
    back = list(csv.reader(io.StringIO((tmp_path / "out2.csv").read_text(encoding="utf-8-sig"), newline="")))
    assert [r[1] for r in back] == ["review", "很快，好吃，味道足！", "多行\n評論 http://t.cn/x"]


def test_csv_without_a_known_text_column_asks_for_one(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = run(capsys, src, tmp_path / "out.csv")
    assert code == 1 and "--text-column" in err and "['a', 'b']" in err


def test_drop_empty(tmp_path, capsys):
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run(capsys, src, dst, "--drop-empty")
    assert code == 0
    assert [r["id"] for r in json.loads(dst.read_text(encoding="utf-8"))] == [1, 3, 4]
    assert "read 4, changed 3, emptied 1, dropped 1, wrote 3" in out


def test_preset_then_flags(tmp_path, capsys):
    src = tmp_path / "in.json"
    src.write_text(json.dumps([{"id": 1, "content": "[哈哈]、开心 转发微博"}], ensure_ascii=False), encoding="utf-8")
    assert run(capsys, src, tmp_path / "a.json", "--preset", "hanlp_chartable")[0] == 0
    assert json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))[0]["content"] == "《哈哈》,开心"
    assert run(capsys, src, tmp_path / "b.json", "--preset", "hanlp_chartable", "--no-remove-repost-marker")[0] == 0
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))[0]["content"] == "《哈哈》,开心 转发微博"
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, src, tmp_path / "c.json", "--preset", "study")
    assert exit_info.value.code == 2 and "hanlp_chartable" in capsys.readouterr().err


@pytest.mark.parametrize("policy,expected", [("empty", ["开心", ""]), ("keep", ["开心", None])])
def test_missing_texts_by_policy(tmp_path, capsys, policy, expected):
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps([{"id": 1, "content": "開心"}, {"id": 2, "content": None}]), encoding="utf-8")
    code, out, _ = run(capsys, src, dst)
    assert code == 1 and not dst.exists()
    code, out, _ = run(capsys, src, dst, "--missing", policy)
    assert code == 0 and [r["content"] for r in json.loads(dst.read_text(encoding="utf-8"))] == expected


def test_options_mirror_the_cleaner_fields(tmp_path, capsys):
    args = build_parser().parse_args(["a.json", "b.json", "--emoji", "text", "--opencc", "none", "--max-length", "140",
                                      "--no-lowercase", "--strip-hashtags", "--max-punct-repeat", "2"])
    assert args.emoji == "text" and args.opencc == "none" and args.max_length == 140 and args.lowercase is False
    defaults = build_parser().parse_args(["a.json", "b.json"])
    assert Cleaner(**{f: getattr(defaults, f) for f in Cleaner.__dataclass_fields__}) == Cleaner()
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps([{"id": 1, "content": "ＡＢＣ開心😂"}], ensure_ascii=False), encoding="utf-8")
    assert run(capsys, src, dst, "--opencc", "none", "--no-lowercase", "--emoji", "remove")[0] == 0
    assert json.loads(dst.read_text(encoding="utf-8"))[0]["content"] == "ABC開心"


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "relative path"])
def test_refuses_to_overwrite_its_input(tmp_path, capsys, monkeypatch, how):
    src = tmp_path / "in.json"
    original = json.dumps(RECORDS, ensure_ascii=False)
    src.write_text(original, encoding="utf-8")
    dst = src
    if how == "symlink":
        dst = tmp_path / "link.json"
        dst.symlink_to(src)
    elif how == "hard link":
        dst = tmp_path / "hard.json"
        os.link(src, dst)
    elif how == "relative path":
        monkeypatch.chdir(tmp_path)
        dst = Path("sub/../in.json")
        (tmp_path / "sub").mkdir()
    code, out, err = run(capsys, src, dst)
    assert code == 1 and "refusing to overwrite the input" in err and out == ""
    assert src.read_text(encoding="utf-8") == original


@pytest.mark.parametrize("fmt,body,where", [
    ("json", json.dumps([{"id": 1, "content": "ok"}, {"id": 2, "text": "no content"}]), "record 1 (id 2)"),
    ("json", json.dumps([{"id": 1, "content": "ok"}, {"id": 2, "content": None}]), "record 1 (id 2)"),
    ("json", json.dumps([{"id": 1, "content": "ok"}, "just a string"]), "record 1"),
    ("json", '[{"id": 1, "content": "ok"},\n {"id": 2, "content": "bad}]', "line 2"),
    ("json", json.dumps({"id": 1, "content": "not a list"}), "JSON list"),
    ("jsonl", '{"content": "ok"}\n\n{"content": 3}\n', "line 3"),
    ("jsonl", '{"content": "ok"}\n{"content": "broken"\n', "line 2"),
    ("csv", "label,content\n1,ok\n2,too,many\n", "line 3"),
    ("csv", 'label,content\n1,ok\n2,"never closed\n', "line"),
])
def test_a_malformed_record_fails_and_leaves_no_file(tmp_path, capsys, fmt, body, where):
    src, out_dir = tmp_path / f"in.{fmt}", tmp_path / "out"
    src.write_text(body, encoding="utf-8")
    out_dir.mkdir()
    code, out, err = run(capsys, src, out_dir / f"clean.{fmt}")
    assert code == 1 and out == ""
    assert err.startswith("clean-weibo: error:") and where in err and str(src) in err
    assert files_in(out_dir) == []


def test_a_failed_run_keeps_an_existing_output(tmp_path, capsys):
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text('{"content": 1}\n', encoding="utf-8")
    dst.write_text("previous result\n", encoding="utf-8")
    assert run(capsys, src, dst)[0] == 1
    assert dst.read_text(encoding="utf-8") == "previous result\n"
    assert files_in(tmp_path) == ["in.jsonl", "out.jsonl"]


def test_non_utf8_input_names_the_file_and_byte_offset(tmp_path, capsys):
    src = tmp_path / "gbk.json"
    src.write_bytes('[{"content": "'.encode() + "中文".encode("gbk") + b'"}]')
    code, _, err = run(capsys, src, tmp_path / "out.json")
    assert code == 1 and str(src) in err and "byte offset 14" in err and "UTF-8" in err
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("argv,message", [
    (["in.txt", "out.txt"], "--format"),
    (["in.json", "out.csv"], "suffix '.csv'"),
    (["missing.json", "out.json"], "does not exist"),
])
def test_bad_paths_are_explained(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    for name in ("in.txt", "in.json"):
        (tmp_path / name).write_text("[]", encoding="utf-8")
    code, _, err = run(capsys, *argv)
    assert code == 1 and message in err


def test_bad_option_values_are_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--max-length", "-3"])
    assert exit_info.value.code == 2 and "-3" in capsys.readouterr().err


@pytest.mark.parametrize("name,count", [("usual_eval_labeled.json", 2000), ("usual_test_labeled.json", 5000),
                                        ("virus_train.json", 8606), ("virus_eval_labeled.json", 2000),
                                        ("virus_test_labeled.json", 3000)])
def test_real_smp2020_files_keep_ids_labels_and_counts(tmp_path, capsys, name, count):
    src = SMP_DIR / name
    assert src.is_file(), f"the SMP2020-EWECT data must be at {SMP_DIR} (beside the checkout)"
    dst = tmp_path / name
    code, out, _ = run(capsys, src, dst)
    assert code == 0
    raw = json.loads(src.read_text(encoding="utf-8"))
    cleaned = json.loads(dst.read_text(encoding="utf-8"))
    assert len(cleaned) == len(raw) == count
    assert [(r["id"], r["label"]) for r in cleaned] == [(r["id"], r["label"]) for r in raw]
    assert [list(r) for r in cleaned] == [list(r) for r in raw]
    assert [r["content"] for r in cleaned] == Cleaner().clean_batch([r["content"] for r in raw])
    changed = sum(a["content"] != b["content"] for a, b in zip(raw, cleaned))
    emptied = sum(not r["content"] for r in cleaned)
    assert changed > count // 3
    assert f"read {count}, changed {changed}, emptied {emptied}, dropped 0, wrote {count}" in out
    assert dst.read_text(encoding="utf-8").startswith('[{"id": 1, "content": ')  # the competition's own layout


def test_thin_script_runs_from_any_directory(tmp_path):
    src, dst = tmp_path / "in.json", tmp_path / "out.json"
    src.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(ROOT / "data_cleaning" / "clean_weibo.py"), str(src), str(dst)],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "read 4, changed 3, emptied 1, dropped 0, wrote 4" in proc.stdout
    assert [r["content"] for r in json.loads(dst.read_text(encoding="utf-8"))] == CLEANED
    bad = subprocess.run([sys.executable, str(ROOT / "data_cleaning" / "clean_weibo.py"), str(src), str(src)],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "refusing to overwrite" in bad.stderr
