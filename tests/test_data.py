import json
import tarfile

import pandas as pd
import pytest

from toolkit.data.labels import TaskSpec, encode_labels
from toolkit.data.readers import DataError, LoadReport, read_json, read_split, subsample
from toolkit.data.splits import prepare_texts


def prepare(ds, source: str, text_column: str = "text", label_column: str = "label", class_names=None):
    """What the old prepare_split did, in the new steps: texts checked/cleaned/dropped, then the label ids."""
    report = LoadReport(source=source, rows_read=len(ds))
    ds = prepare_texts(ds, report, text_column)
    ids, names = encode_labels(ds[label_column], TaskSpec("label", label_column, "classification", class_names),
                               source)
    return ds, ids, names, report


def write_acl_tree(root):
    for split in ("train", "test"):
        for sentiment, rating in (("pos", 9), ("neg", 2)):
            folder = root / "aclImdb" / split / sentiment
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_{rating}.txt").write_text(f"{sentiment} review {i} <br />", encoding="utf-8")
    return root / "aclImdb"


def test_real_imdb_parquet_by_name(shared_data):
    ds = read_split("imdb", "test", data_dir=str(shared_data))
    assert len(ds) == 25_000
    assert {"text", "label", "rating"} <= set(ds.column_names)
    from toolkit.args import DataArguments

    class_names = DataArguments().task_specs[0].class_names  # imdb's default task: label with neg/pos
    assert class_names == ["neg", "pos"]
    prepared, ids, names, report = prepare(ds, "imdb[test]", class_names=class_names)
    assert names == ["neg", "pos"] and report.rows_read == 25_000 and report.rows_kept == 25_000
    assert set(ids) == {0, 1} and len(ids) == len(prepared) == 25_000


def test_aclimdb_folder_and_tarball_give_the_same_rows(tmp_path):
    acl = write_acl_tree(tmp_path / "tree")
    tarball = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(acl, arcname="aclImdb")
    for source in (acl, acl.parent, tarball):
        ds = read_split(str(source), "train")
        rows = sorted(zip(ds["text"], ds["label"], ds["rating"]))
        assert len(rows) == 6
        assert rows[0] == ("neg review 0 <br />", 0, 2) and rows[-1] == ("pos review 2 <br />", 1, 9)


def test_csv_json_jsonl_with_string_labels(tmp_path):
    rows = [{"review": "good", "sentiment": "pos"}, {"review": "bad", "sentiment": "neg"}]
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    (tmp_path / "a.json").write_text(json.dumps(rows), encoding="utf-8")
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    for name in ("a.csv", "a.json", "a.jsonl"):
        ds, ids, names, _ = prepare(read_split(str(tmp_path / name), "train"), name, "review", "sentiment")
        assert names == ["neg", "pos"]
        assert ds["text"] == ["good", "bad"] and ids == [1, 0]


def test_folder_with_split_files(tmp_path):
    pd.DataFrame({"text": ["x", "y"], "label": [0, 1]}).to_parquet(tmp_path / "test.parquet")
    assert read_split(str(tmp_path), "test")["text"] == ["x", "y"]
    with pytest.raises(DataError, match="found no 'train' data"):
        read_split(str(tmp_path), "train")


def test_missing_path_empty_file_and_non_utf8_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_split(str(tmp_path / "nope.csv"), "train")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_split(str(tmp_path / "empty.csv"), "train")
    (tmp_path / "gbk.csv").write_bytes("text,label\n".encode() + "好电影,1\n".encode("gbk"))
    with pytest.raises(DataError, match=r"not valid UTF-8 at byte 11"):
        read_split(str(tmp_path / "gbk.csv"), "train")


def test_missing_column_bad_labels_and_empty_texts(tmp_path):
    pd.DataFrame({"text": ["a", "  ", "b", ""], "label": [0, 1, 1, 0]}).to_csv(tmp_path / "d.csv", index=False)
    ds = read_split(str(tmp_path / "d.csv"), "train")
    with pytest.raises(DataError, match="no text column 'body'"):
        prepare(ds, "d.csv", text_column="body")
    prepared, ids, _, report = prepare(ds, "d.csv", class_names=["neg", "pos"])
    assert report.empty_texts_dropped == 2 and prepared["text"] == ["a", "b"] and ids == [0, 1]
    with pytest.raises(DataError, match=r"labels \[1\] are outside 0..0"):
        encode_labels(ds["label"], TaskSpec("label", "label", "classification", ["only"]), "d.csv")
    pd.DataFrame({"text": ["a"], "label": ["maybe"]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(DataError, match="'maybe'.*not in the label set"):
        prepare(read_split(str(tmp_path / "s.csv"), "train"), "s.csv", class_names=["neg", "pos"])


def test_unknown_dataset_name_explains_offline_options(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="not in any local data folder.*Pass a local path"):
        read_split("no_such_dataset_xyz", "train")


def test_subsample_is_seeded_and_mixes_labels(shared_data):
    ds = read_split("imdb", "train", data_dir=str(shared_data))
    a, b = subsample(ds, 200, seed=1), subsample(ds, 200, seed=1)
    assert a["id"] == b["id"]
    assert 60 < sum(a["label"]) < 140, "a subset of a label-sorted file must not be one class"


def test_byte_order_marks_inside_records_are_stripped(tmp_path):
    (tmp_path / "bom.csv").write_text("text,label\n\ufeffgood,1\nbad,0\n", encoding="utf-8")
    ds, ids, _, _ = prepare(read_split(str(tmp_path / "bom.csv"), "train"), "bom.csv")
    assert ds["text"] == ["good", "bad"] and ids == [1, 0]


def test_single_file_is_split_by_eval_fraction_and_split_files_are_read_as_given(tmp_path):
    """A single file has no splits: it is split into train/eval by --eval_fraction (seeded, stratified on the
    label); --train_split/--eval_split given as files are read as they are."""
    from toolkit.args import DataArguments
    from toolkit.data.splits import load_splits

    texts = [f"review {i}" for i in range(20)]
    (tmp_path / "all.csv").write_text("text,label\n" + "".join(f"{t},{i % 2}\n" for i, t in enumerate(texts)),
                                      encoding="utf-8")
    single = DataArguments(dataset=str(tmp_path / "all.csv"), eval_fraction=0.2)
    splits = load_splits(single, seed=0)
    assert len(splits.train) == 16 and len(splits.eval) == 4
    assert sorted([*splits.train["text"], *splits.eval["text"]]) == sorted(texts), "train and eval partition the file"
    assert sorted(splits.eval["labels_label"]) == [0, 0, 1, 1], "the held-out share is stratified"
    # each role's report counts the rows read for that role (as before the refactor), not the whole file / zero
    reports = splits.reports["train"], splits.reports["eval"]
    assert [(r.rows_read, r.rows_kept) for r in reports] == [(16, 16), (4, 4)]
    assert list(load_splits(single, seed=0).eval["text"]) == list(splits.eval["text"]), "the split is seeded"
    assert list(load_splits(single, seed=1).eval["text"]) != list(splits.eval["text"])

    for name, rows in (("train.csv", "a,0\nb,1\nc,1\n"), ("eval.csv", "d,1\n")):
        (tmp_path / name).write_text("text,label\n" + rows, encoding="utf-8")
    for dataset in ("files", str(tmp_path / "train.csv")):
        splits = load_splits(DataArguments(dataset=dataset, train_split=str(tmp_path / "train.csv"),
                                           eval_split=str(tmp_path / "eval.csv")), seed=0)
        assert sorted(splits.train["text"]) == ["a", "b", "c"] and list(splits.eval["text"]) == ["d"]
        assert splits.label_names == ["0", "1"] and list(splits.eval["labels_label"]) == [1]


def test_relative_data_path_resolves_from_the_repository_root(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = read_split("../shared/data/imdb/test.parquet", "test")
    assert len(ds) == 25000 and {"text", "label"} <= set(ds.column_names)
    with pytest.raises(DataError, match="does not exist"):
        read_split("../shared/data/no_such_file.json", "train")


def test_malformed_json_names_the_file_and_line(tmp_path):
    """A bad line in a JSON Lines (or JSON) file is reported as ``<file>:<line>: not valid JSON (...)``."""
    good = [json.dumps({"text": t, "label": i % 2}) for i, t in enumerate("abcd")]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(good[:2] + ['{"text": "c", "label": 1'] + good[3:]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl:3: not valid JSON \(Expecting ',' delimiter at column 25\)$"):
        read_split(str(path), "train", cache_dir=str(tmp_path / "cache"))
    pretty = tmp_path / "eval.json"
    pretty.write_text('[\n  {"text": "a", "label": 0},\n  {"text": "b" "label": 1}\n]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"eval\.json:3: not valid JSON \(Expecting ',' delimiter"):
        read_split(str(pretty), "eval", cache_dir=str(tmp_path / "cache"))
    lines = tmp_path / "lines.json"  # JSON Lines under a .json name: the bad line is found the same way
    lines.write_text("\n".join(good[:3] + ["{oops}"]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"lines\.json:4: not valid JSON \(Expecting property name"):
        read_split(str(lines), "train", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(DataError, match=r"eval\.json:3: not valid JSON \(Expecting ',' delimiter at column 16\); "
                                        "expected a list"):
        read_json(pretty, "a list")  # the whole-file reader of the SMP2020 files says the same
