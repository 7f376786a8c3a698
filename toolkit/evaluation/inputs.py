"""Read batch-inference inputs one entry per row, and write predictions atomically.

Why: ``str.splitlines()`` also breaks on U+0085, U+2028, U+2029, ``\\x0b``, ``\\x0c`` and ``\\x1c``-``\\x1e``, and
dropping blank lines shifts every later row, so predictions stopped lining up with their inputs (2,000 IMDB reviews
gave 2,053 predictions). Here every format has one entry per row, in order, or an :class:`InputError` that says
where the file is wrong.

Formats, chosen by suffix (case-insensitive):

* ``.jsonl`` / ``.ndjson``: one JSON object per ``\\n``-terminated line; the text is under ``text_column``
  (default ``"text"``); ``null`` becomes ``""``. A blank line is an error, not an empty record: JSON Lines has no
  blank records, and silently skipping one is exactly how rows drift out of line.
* ``.csv`` / ``.tsv``: a header row, then one record per row (quoted fields may hold newlines, kept as given); the
  text is the ``text_column`` field (default ``"text"``). Blank lines and records with the wrong number of fields
  are errors, for the same reason.
* anything else (``.txt``): one text per ``\\n``-terminated line; one trailing ``\\r`` is dropped (CRLF files); blank
  lines are kept as ``""``; a final newline does not add a row; Unicode line separators stay inside their text.

All files must be UTF-8; a leading byte-order mark is dropped. No torch/transformers import here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t"}
DEFAULT_TEXT_COLUMN = "text"

# Line breaks that json.dumps(ensure_ascii=False) leaves raw; escaping them keeps every output record on one line
# even for readers that split with str.splitlines() (json.dumps already escapes \n, \r, \x0b, \x0c and \x1c-\x1e).
_RAW_BREAK_ESCAPES = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_MAX_SHOWN_KEYS = 20


class InputError(ValueError):
    """A problem with an input or output file, in one line: the file, the line/record, what is wrong, what to do."""


def read_texts(path: PathLike, text_column: str | None = None) -> list[str]:
    """Read one text per input row of ``path``, in order, so that the i-th prediction belongs to the i-th row.

    ``text_column`` names the field for ``.jsonl``/``.ndjson``/``.csv``/``.tsv`` (default ``"text"``); plain-text
    files have no columns, so passing one for them is an error rather than silently ignored. Raises
    :class:`InputError` for an unreadable, non-UTF-8, malformed or empty file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if text_column is not None and (not isinstance(text_column, str) or not text_column):
        raise InputError(f"{path}: text column must be a non-empty string, got {text_column!r}.")
    if suffix in JSONL_SUFFIXES:
        return _read_jsonl(path, text_column or DEFAULT_TEXT_COLUMN)
    if suffix in DELIMITED_SUFFIXES:
        return _read_delimited(path, text_column or DEFAULT_TEXT_COLUMN, DELIMITED_SUFFIXES[suffix])
    if text_column is not None:
        raise InputError(
            f"{path}: a text column ({text_column!r}) was given, but a '{suffix or 'plain'}' file is read as plain "
            f"text, one text per line; use a .jsonl, .csv or .tsv file, or drop the text column."
        )
    return _read_plain(path)


def write_jsonl_atomic(
    path: PathLike, rows: Iterable[Mapping], refuse_same_as: PathLike | Iterable[PathLike] | None = None
) -> int:
    """Write ``rows`` as JSON lines to ``path`` all at once, and return how many were written.

    The rows go to a temporary file in the same folder, which then replaces ``path`` (``os.replace``): a run that
    is interrupted, or whose ``rows`` raise midway, leaves no half-written file that looks complete, and any old
    ``path`` untouched. ``refuse_same_as`` is an input path (or several); writing over one of them is refused with
    :class:`InputError` before anything is written. Text is written as UTF-8 (``ensure_ascii=False``), with U+0085,
    U+2028 and U+2029 escaped so each record stays on one line for any line splitter.
    """
    path = Path(path)
    _refuse_overwriting_inputs(path, refuse_same_as)
    if path.is_dir():
        raise InputError(f"{path}: the output path is a folder; give a file name, such as "
                         f"{path / 'predictions.jsonl'}.")
    folder = path.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise InputError(f"{path}: cannot create the output in '{folder}' ({err.strerror or err}); "
                         f"check that the folder exists and is writable.") from err
    count = 0
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as out:
            for row in rows:
                if not isinstance(row, Mapping):
                    raise TypeError(f"write_jsonl_atomic: row {count + 1} is a {type(row).__name__}, not a dict.")
                out.write(json.dumps(dict(row), ensure_ascii=False).translate(_RAW_BREAK_ESCAPES) + "\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, _output_mode(path))
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return count


# -- readers ---------------------------------------------------------------------------------------------------------


def _read_plain(path: Path) -> list[str]:
    """One text per ``\\n`` line; blank lines kept as ``""``; one trailing ``\\r`` dropped per line."""
    text = _read_utf8(path)
    if text == "":
        raise InputError(f"{path}: no rows (the file is empty); write one text per line.")
    lines = text.split("\n")
    if lines[-1] == "":  # the final newline ends the last row; it does not start an empty one
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_jsonl(path: Path, column: str) -> list[str]:
    """One JSON object per ``\\n`` line; the text is ``obj[column]``, ``null`` read as ``""``; blank lines refused."""
    text = _read_utf8(path)
    if text == "":
        raise InputError(f"{path}: no rows (the file is empty); write one JSON object per line.")
    lines = text.split("\n")  # not splitlines(): raw U+2028 etc. are legal inside JSON strings
    if lines[-1] == "":
        lines.pop()
    texts = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}: line {number}"
        if line.strip() == "":
            raise InputError(f"{where}: blank line, but every JSONL line must be one JSON object; remove it, or "
                             f"write {{\"{column}\": \"\"}} for an empty text.")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{where}: not valid JSON ({err.msg} at column {err.colno}); "
                             f"fix the line so it holds one JSON object.") from err
        if not isinstance(record, dict):
            raise InputError(f"{where}: a JSON {_json_type(record)}, not an object; write {{\"{column}\": ...}}.")
        if column not in record:
            raise InputError(f"{where}: no {column!r} key (keys: {_show_keys(record)}); "
                             f"add it, or choose the text column with text_column / --text-column.")
        value = record[column]
        if value is None:
            value = ""
        elif not isinstance(value, str):
            raise InputError(f"{where}: {column!r} is a JSON {_json_type(value)} ({_preview(value)}), not a string; "
                             f"write the text as a JSON string.")
        texts.append(value)
    return texts


def _read_delimited(path: Path, column: str, delimiter: str) -> list[str]:
    """CSV/TSV with a header row: the ``column`` field of each record, values kept exactly as given."""
    kind = "TSV" if delimiter == "\t" else "CSV"
    text = _read_utf8(path)
    if text == "":
        raise InputError(f"{path}: no rows (the file is empty); write a header row with a {column!r} column, "
                         f"then one record per row.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    texts: list[str] = []
    header: list[str] | None = None
    index = -1
    record_number = 0
    start_line = 1
    old_limit = csv.field_size_limit()
    csv.field_size_limit(max(old_limit, 2**31 - 1))  # long reviews are not an error; restored below
    try:
        while True:
            start_line = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                what = "header" if header is None else f"record {record_number + 1}"
                raise InputError(f"{path}: {what} starting on line {start_line}: malformed {kind} ({err}); "
                                 f"check its quotes: a field holding quotes, delimiters or newlines must be quoted, "
                                 f"with inner quotes doubled.") from err
            if header is None:
                header = fields
                if column not in header:
                    raise InputError(f"{path}: line {start_line}: no {column!r} column in the header "
                                     f"({_show_keys(header)}); add it, or choose the text column with "
                                     f"text_column / --text-column.")
                if header.count(column) > 1:
                    raise InputError(f"{path}: line {start_line}: the header names {column!r} "
                                     f"{header.count(column)} times; rename the extra columns.")
                index = header.index(column)
                continue
            record_number += 1
            where = f"{path}: record {record_number} (line {start_line})"
            if not fields:
                raise InputError(f"{where}: blank line, but every {kind} line after the header must be a record; "
                                 f"remove it, or write \"\" for an empty text.")
            if len(fields) != len(header):
                raise InputError(f"{where}: {len(fields)} fields, but the header has {len(header)}; "
                                 f"quote fields that hold the delimiter, quotes or newlines.")
            texts.append(fields[index])
    finally:
        csv.field_size_limit(old_limit)
    if header is None or not texts:
        raise InputError(f"{path}: no rows (only a header); add one record per row under the header.")
    return texts


# -- helpers ---------------------------------------------------------------------------------------------------------


def _read_utf8(path: Path) -> str:
    """The file as text, strictly UTF-8 (a leading BOM dropped); errors name the first bad byte's offset."""
    try:
        data = path.read_bytes()
    except IsADirectoryError as err:
        raise InputError(f"{path}: is a folder, not a file; give the input file itself.") from err
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err}); check the path and its permissions.") from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputError(f"{path}: not UTF-8: byte offset {err.start} (line {line}, byte "
                         f"0x{data[err.start]:02x}): {err.reason}; re-save the file as UTF-8.") from err
    return text[1:] if text.startswith("\ufeff") else text


def _refuse_overwriting_inputs(path: Path, refuse_same_as: PathLike | Iterable[PathLike] | None) -> None:
    """Raise InputError if ``path`` is (or links to) one of the inputs, before anything is written."""
    if refuse_same_as is None:
        return
    if isinstance(refuse_same_as, (str, os.PathLike)):
        inputs = [refuse_same_as]
    else:
        inputs = list(refuse_same_as)
    for source in inputs:
        source = Path(source)
        try:
            same = os.path.samefile(path, source)
        except OSError:  # one of them does not exist (yet): compare where they would be
            same = path.resolve() == source.resolve()
        if same:
            raise InputError(f"{path}: the output is the input file {source}; "
                             f"write the predictions to a different path.")


def _output_mode(path: Path) -> int:
    """Permissions for the new file: those of the file it replaces, else the usual 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def _preview(value: object, limit: int = 40) -> str:
    """A short one-line JSON rendering of a value, for messages."""
    shown = json.dumps(value, ensure_ascii=True)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _show_keys(keys: Iterable[str]) -> str:
    """Keys or header names, comma-separated on one line, the first few only."""
    keys = [json.dumps(str(key), ensure_ascii=True) for key in keys]
    if not keys:
        return "none"
    shown = ", ".join(keys[:_MAX_SHOWN_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _MAX_SHOWN_KEYS else "")
