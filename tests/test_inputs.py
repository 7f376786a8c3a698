"""Batch-inference inputs: one entry per row, in order, and an atomic predictions writer."""

from __future__ import annotations

import json
import os

import pytest

from toolkit.evaluation.inputs import InputError, read_texts, write_jsonl_atomic

# Texts holding every character str.splitlines() breaks on besides \n and \r.
ODD_TEXTS = [
    "first line with a line separator \u2028 inside",
    "",
    "next line \x85 and a form feed \x0c here",
    "vertical tab \x0b, group separators \x1c\x1d\x1e, paragraph \u2029 end",
    "",
    "",
    "last",
]


def write_bytes(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- plain text ------------------------------------------------------------------------------------------------------


def test_txt_one_entry_per_newline_line(tmp_path):
    content = "\n".join(ODD_TEXTS) + "\n"
    path = write_bytes(tmp_path, "reviews.txt", content.encode("utf-8"))
    texts = read_texts(path)
    assert texts == ODD_TEXTS
    assert len(texts) == content.count("\n")
    # The old reader (str.splitlines) breaks inside these texts, so its rows would not line up.
    assert content.splitlines() != ODD_TEXTS


def test_txt_crlf(tmp_path):
    path = write_bytes(tmp_path, "crlf.txt", "one\r\n\r\ntwo \u2028 still two\r\nthree\r\n".encode("utf-8"))
    assert read_texts(path) == ["one", "", "two \u2028 still two", "three"]


def test_txt_strips_only_one_trailing_cr(tmp_path):
    path = write_bytes(tmp_path, "cr.txt", b"a\r\r\nb\rc\n")
    assert read_texts(path) == ["a\r", "b\rc"]


def test_txt_no_trailing_newline(tmp_path):
    path = write_bytes(tmp_path, "plain.txt", b"one\n\ntwo")
    assert read_texts(path) == ["one", "", "two"]


def test_txt_trailing_blank_lines_are_rows(tmp_path):
    path = write_bytes(tmp_path, "blank.txt", b"one\n\n\n")
    assert read_texts(path) == ["one", "", ""]


def test_txt_bom_dropped_and_other_suffix_is_plain(tmp_path):
    path = write_bytes(tmp_path, "reviews.dat", "\ufeffhello\nworld\n".encode("utf-8"))
    assert read_texts(path) == ["hello", "world"]


def test_txt_bad_utf8_names_byte_offset(tmp_path):
    data = "ok\nbien sûr\n".encode("utf-8") + b"bad \xff byte\n"
    path = write_bytes(tmp_path, "latin.txt", data)
    with pytest.raises(InputError) as info:
        read_texts(path)
    message = str(info.value)
    assert str(path) in message
    offset = data.index(b"\xff")
    assert f"byte offset {offset}" in message
    assert "line 3" in message
    assert "\n" not in message


def test_txt_refuses_text_column(tmp_path):
    path = write_bytes(tmp_path, "reviews.txt", b"one\n")
    with pytest.raises(InputError, match="text column"):
        read_texts(path, text_column="review")


@pytest.mark.parametrize("name", ["empty.txt", "empty.jsonl", "empty.csv", "empty.tsv"])
def test_empty_file(tmp_path, name):
    path = write_bytes(tmp_path, name, b"")
    with pytest.raises(InputError, match="no rows") as info:
        read_texts(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_texts(tmp_path / "absent.txt")


# -- JSONL -----------------------------------------------------------------------------------------------------------


def jsonl(*records) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def test_jsonl_reads_column_and_null_is_empty(tmp_path):
    path = write_bytes(tmp_path, "in.jsonl", jsonl({"text": "a \u2028 b", "id": 1}, {"text": None}, {"text": "c"}))
    assert read_texts(path) == ["a \u2028 b", "", "c"]


def test_jsonl_raw_line_separator_inside_string(tmp_path):
    path = write_bytes(tmp_path, "in.ndjson", '{"review": "x \u2028 y \x85 z"}\r\n{"review": "w"}'.encode("utf-8"))
    assert read_texts(path, text_column="review") == ["x \u2028 y \x85 z", "w"]


def test_jsonl_malformed_line_number(tmp_path):
    path = write_bytes(tmp_path, "in.jsonl", b'{"text": "a"}\n{"text": "b"}\n{"text": "c",\n')
    with pytest.raises(InputError, match=r"line 3: not valid JSON") as info:
        read_texts(path)
    assert str(path) in str(info.value)


def test_jsonl_missing_column_names_line_and_keys(tmp_path):
    path = write_bytes(tmp_path, "in.jsonl", jsonl({"text": "a"}, {"review": "b", "label": 1}))
    with pytest.raises(InputError) as info:
        read_texts(path)
    message = str(info.value)
    assert "line 2" in message and "'text'" in message
    assert '"review"' in message and '"label"' in message


def test_jsonl_non_string_value(tmp_path):
    path = write_bytes(tmp_path, "in.jsonl", jsonl({"text": "a"}, {"text": 5}))
    with pytest.raises(InputError, match=r"line 2: 'text' is a JSON number"):
        read_texts(path)


def test_jsonl_non_object_line(tmp_path):
    path = write_bytes(tmp_path, "in.jsonl", b'{"text": "a"}\n["text"]\n')
    with pytest.raises(InputError, match=r"line 2: a JSON array, not an object"):
        read_texts(path)


def test_jsonl_blank_line_is_an_error(tmp_path):
    path = write_bytes(tmp_path, "in.jsonl", b'{"text": "a"}\n\n{"text": "b"}\n')
    with pytest.raises(InputError, match=r"line 2: blank line"):
        read_texts(path)


# -- CSV / TSV -------------------------------------------------------------------------------------------------------


def test_csv_quoted_newline_and_custom_column(tmp_path):
    data = 'id,review,label\r\n1,"first line\nsecond, line",pos\r\n2,"",neg\r\n3,"say ""hi"" \u2028",pos\r\n'
    path = write_bytes(tmp_path, "in.csv", data.encode("utf-8"))
    assert read_texts(path, text_column="review") == ["first line\nsecond, line", "", 'say "hi" \u2028']


def test_csv_default_column_and_bom(tmp_path):
    path = write_bytes(tmp_path, "in.csv", "\ufefftext,label\nhello,1\nworld,0".encode("utf-8"))
    assert read_texts(path) == ["hello", "world"]


def test_tsv(tmp_path):
    path = write_bytes(tmp_path, "in.tsv", b"label\ttext\n1\ta, b, c\n0\t\n")
    assert read_texts(path) == ["a, b, c", ""]


def test_csv_missing_column_lists_header(tmp_path):
    path = write_bytes(tmp_path, "in.csv", b"id,review\n1,hi\n")
    with pytest.raises(InputError) as info:
        read_texts(path)
    message = str(info.value)
    assert "'text'" in message and '"id", "review"' in message and str(path) in message


def test_csv_header_only_has_no_rows(tmp_path):
    path = write_bytes(tmp_path, "in.csv", b"text\n")
    with pytest.raises(InputError, match="no rows"):
        read_texts(path)


def test_csv_wrong_field_count_names_record(tmp_path):
    path = write_bytes(tmp_path, "in.csv", b'id,text\n1,"multi\nline"\n2,a,b\n')
    with pytest.raises(InputError, match=r"record 2 \(line 4\): 3 fields, but the header has 2"):
        read_texts(path)


def test_csv_unterminated_quote(tmp_path):
    path = write_bytes(tmp_path, "in.csv", b'id,text\n1,ok\n2,"never closed\n3,x\n')
    with pytest.raises(InputError, match=r"record 2 starting on line 3: malformed CSV"):
        read_texts(path)


def test_csv_blank_line_is_an_error(tmp_path):
    path = write_bytes(tmp_path, "in.csv", b"text\na\n\nb\n")
    with pytest.raises(InputError, match=r"record 2 \(line 3\): blank line"):
        read_texts(path)


def test_csv_long_field(tmp_path):
    long_text = "x" * 200_000  # over csv's default field size limit
    path = write_bytes(tmp_path, "in.csv", f"text\n{long_text}\n".encode("utf-8"))
    assert read_texts(path) == [long_text]


# -- atomic writer ---------------------------------------------------------------------------------------------------


def test_write_jsonl_atomic_round_trip(tmp_path):
    out = tmp_path / "predictions.jsonl"
    rows = [{"text": t, "label": i} for i, t in enumerate(ODD_TEXTS)]
    assert write_jsonl_atomic(out, iter(rows)) == len(rows)
    content = out.read_text(encoding="utf-8")
    assert len(content.splitlines()) == len(rows)  # raw U+2028/U+0085 are escaped, so even splitlines agrees
    assert [json.loads(line) for line in content.split("\n")[:-1]] == rows
    assert read_texts(out) == ODD_TEXTS
    assert os.listdir(tmp_path) == ["predictions.jsonl"]


def test_write_jsonl_atomic_keeps_non_ascii(tmp_path):
    out = tmp_path / "out.jsonl"
    write_jsonl_atomic(out, [{"text": "好电影 é"}])
    assert out.read_text(encoding="utf-8") == '{"text": "好电影 é"}\n'


def test_write_jsonl_atomic_interrupted_leaves_old_file(tmp_path):
    out = tmp_path / "predictions.jsonl"
    out.write_text("old contents\n", encoding="utf-8")

    def rows():
        yield {"label": 1}
        yield {"label": 2}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_jsonl_atomic(out, rows())
    assert out.read_text(encoding="utf-8") == "old contents\n"
    assert os.listdir(tmp_path) == ["predictions.jsonl"]


def test_write_jsonl_atomic_interrupted_without_old_file(tmp_path):
    out = tmp_path / "predictions.jsonl"

    def rows():
        yield {"label": 1}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl_atomic(out, rows())
    assert os.listdir(tmp_path) == []


def test_write_jsonl_atomic_refuses_input(tmp_path):
    source = tmp_path / "reviews.jsonl"
    source.write_bytes(jsonl({"text": "a"}))
    with pytest.raises(InputError, match="output is the input"):
        write_jsonl_atomic(tmp_path / "." / "reviews.jsonl", [{"label": 1}], refuse_same_as=source)
    with pytest.raises(InputError, match="output is the input"):
        write_jsonl_atomic(source, [{"label": 1}], refuse_same_as=[tmp_path / "other.txt", str(source)])
    assert read_texts(source) == ["a"]
    assert sorted(os.listdir(tmp_path)) == ["reviews.jsonl"]


def test_write_jsonl_atomic_refuses_hard_link_to_input(tmp_path):
    source = tmp_path / "reviews.txt"
    source.write_text("a\n", encoding="utf-8")
    link = tmp_path / "out.jsonl"
    os.link(source, link)
    with pytest.raises(InputError, match="output is the input"):
        write_jsonl_atomic(link, [{"label": 1}], refuse_same_as=source)
    assert source.read_text(encoding="utf-8") == "a\n"


def test_write_jsonl_atomic_allows_other_path(tmp_path):
    source = tmp_path / "reviews.txt"
    source.write_text("a\n", encoding="utf-8")
    assert write_jsonl_atomic(tmp_path / "out.jsonl", [{"label": 1}], refuse_same_as=source) == 1


def test_write_jsonl_atomic_missing_folder(tmp_path):
    with pytest.raises(InputError, match="cannot create the output"):
        write_jsonl_atomic(tmp_path / "absent" / "out.jsonl", [{"label": 1}])
