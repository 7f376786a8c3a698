"""``clean-weibo IN OUT [options]``: clean the text field of a JSON, JSONL or CSV file with ``toolkit.cleaning``.

Formats (from the file suffix, or ``--format``): ``json`` is a JSON list of objects such as the SMP2020-EWECT
files (``[{"id": 1, "content": "...", "label": "happy"}, ...]``); ``jsonl`` is one object per line; ``csv`` has a
header row. The output has the input's format, with every other field, the order and (unless ``--drop-empty``)
every record kept. The text field is ``--text-column`` (default ``content``; for CSV the first of ``content``,
``text``, ``review`` in the header). Cleaning options mirror the ``Cleaner`` fields (``--emoji text``,
``--opencc none``, ``--max-length 140``, ``--no-lowercase``...); ``--preset hanlp_chartable`` starts from a named
option set (the SMP2020-EWECT study's normalisation), which the other flags then override. A JSON ``null`` text is
an error unless ``--missing empty`` (cleaned as ``""``) or ``--missing keep`` (left ``null``).

The output is written to a temporary file beside OUT and renamed at the end, so a failed run leaves no partial
file; the input is never overwritten. A malformed record stops the run with its line or index on stderr and
exit status 1. Counts go to stdout: records read, texts changed, texts empty after cleaning ("emptied") and
records dropped.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from .cleaning import (CHAR_TABLES, EMOJI_LANGUAGES, EMOJI_MODES, EMOTICON_MODES, MISSING_POLICIES, OPENCC_CONFIGS,
                       PRESETS, Cleaner)

PROG = "clean-weibo"
FORMATS = ("json", "jsonl", "csv")
_SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_CSV_TEXT_COLUMNS = ("content", "text", "review")
_BOM = "\ufeff"

_CHOICES = {"opencc": OPENCC_CONFIGS + ("none",), "emoji": EMOJI_MODES, "emoji_language": EMOJI_LANGUAGES,
            "emoticons": EMOTICON_MODES, "char_table": CHAR_TABLES + ("none",), "missing": MISSING_POLICIES}


class CleaningFileError(Exception):
    """A problem with the input or output file, reported to the user without a traceback."""


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; every ``Cleaner`` field has an option of the same name (defaults: ``preset``'s)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Clean the text field of a JSON, JSONL or CSV file with toolkit.cleaning; the output "
        "keeps the input's format, fields and records. Counts go to stdout, errors to stderr (exit status 1).")
    parser.add_argument("input", type=Path, help="input file (.json, .jsonl or .csv)")
    parser.add_argument("output", type=Path, help="output file, written in the input's format")
    parser.add_argument("--format", choices=FORMATS, help="input format (default: from the input suffix)")
    parser.add_argument("--text-column", help="field holding the text (default: content; CSV: content, text or "
                                              "review, whichever the header has first)")
    parser.add_argument("--drop-empty", action="store_true", help="drop records whose text is empty after cleaning")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=preset,
                        help="start from a named option set (hanlp_chartable: the SMP2020-EWECT study's "
                             "normalisation); the flags below override it")
    options = parser.add_argument_group("cleaning options (the fields of toolkit.cleaning.Cleaner)")
    defaults = Cleaner.preset(preset) if preset else Cleaner()
    for f in fields(Cleaner):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if f.type == "bool":
            options.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                                 help=f"{f.metadata['help']} (default: {'on' if default else 'off'})")
        elif f.name in _CHOICES:
            default = "none" if default is None else default
            options.add_argument(flag, dest=f.name, choices=_CHOICES[f.name], default=default,
                                 help=f"{f.metadata['help']} (default: {default})")
        else:
            options.add_argument(flag, dest=f.name, type=_positive_int_or_none, default=default, metavar="N",
                                 help=f.metadata["help"])
    return parser


def _preset_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--preset")
    return parser


def _positive_int_or_none(value: str) -> int | None:
    if value.lower() in ("none", "off", "0"):
        return None
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'none', got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'none', got {value!r}")
    return number


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 1 bad input/output, 2 bad arguments)."""
    parser = build_parser()
    known, _ = _preset_parser().parse_known_args(argv)
    if known.preset is not None:
        if known.preset not in PRESETS:
            parser.parse_args(argv)  # says which presets there are, exit status 2
        parser = build_parser(known.preset)
    args = parser.parse_args(argv)
    try:
        cleaner = Cleaner(**{f.name: getattr(args, f.name) for f in fields(Cleaner)})
    except ValueError as err:
        parser.error(str(err))
    try:
        counts = clean_file(args.input, args.output, cleaner, fmt=args.format, text_column=args.text_column,
                            drop_empty=args.drop_empty)
    except CleaningFileError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    print(f"{PROG}: read {counts['read']}, changed {counts['changed']}, emptied {counts['emptied']}, "
          f"dropped {counts['dropped']}, wrote {counts['written']} records to {args.output}")
    return 0


def clean_file(src: Path, dst: Path, cleaner: Cleaner, fmt: str | None = None, text_column: str | None = None,
               drop_empty: bool = False) -> dict[str, int]:
    """Clean ``src`` into ``dst`` (same format); returns the counts. Raises ``CleaningFileError`` on bad input."""
    src, dst = Path(src), Path(dst)
    fmt = fmt or _format_of(src)
    _check_paths(src, dst, fmt)
    text, bom = _read_utf8(src)
    if fmt == "csv":
        table = _read_csv(src, text, text_column)
        records, texts = table["rows"], [row[table["column"]] for row in table["rows"]]
    else:
        column = text_column or "content"
        nulls = cleaner.missing != "error"
        records = _read_json(src, text, column, nulls) if fmt == "json" else _read_jsonl(src, text, column, nulls)
        texts = [record[column] for record in records]
    report = cleaner.clean_batch_report(texts)
    empty = set(report.empty_indices)
    keep = [i for i in range(len(records)) if not (drop_empty and i in empty)]
    if fmt == "csv":
        for row, cleaned in zip(records, report.texts):
            row[table["column"]] = cleaned
        body = _write_csv(table, [records[i] for i in keep])
    else:
        for record, cleaned in zip(records, report.texts):
            record[column] = cleaned
        kept = [records[i] for i in keep]
        if fmt == "json":
            indent = 2 if text.lstrip(_BOM + " \t\r\n")[1:].lstrip(" \t").startswith(("\n", "\r")) else None
            body = json.dumps(kept, ensure_ascii=False, indent=indent) + ("\n" if text.endswith("\n") else "")
        else:
            body = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in kept)
    _write_atomic(dst, (_BOM if bom else "") + body)
    return {"read": len(records), "changed": len(report.changed_indices), "emptied": len(empty),
            "dropped": len(records) - len(keep), "written": len(keep)}


# ---- paths ---------------------------------------------------------------------------------------------------------
def _format_of(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise CleaningFileError(f"cannot tell the format of {path} from its suffix {path.suffix!r}; "
                                f"pass --format {'|'.join(FORMATS)}.")
    return fmt


def _check_paths(src: Path, dst: Path, fmt: str) -> None:
    if not src.is_file():
        raise CleaningFileError(f"input file {src} does not exist (or is not a file).")
    if dst.is_dir():
        raise CleaningFileError(f"output {dst} is a directory; give a file name.")
    if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(src, dst)):
        raise CleaningFileError(f"refusing to overwrite the input: {dst} is the same file as {src}; "
                                "write the output to another path.")
    out_fmt = _SUFFIXES.get(dst.suffix.lower())
    if out_fmt is not None and out_fmt != fmt:
        raise CleaningFileError(f"the output keeps the input format ({fmt}) but {dst} has the suffix "
                                f"{dst.suffix!r}; name it with a .{fmt} suffix.")


def _read_utf8(path: Path) -> tuple[str, bool]:
    """The file's text and whether it started with a byte-order mark; non-UTF-8 input is an error."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CleaningFileError(
            f"{path} is not valid UTF-8: byte 0x{data[err.start]:02x} at byte offset {err.start} ({err.reason}). "
            f"Convert the file to UTF-8 first, e.g. iconv -f GBK -t UTF-8 {path} > converted{path.suffix}") from None
    if text.startswith(_BOM):
        return text[1:], True
    return text, False


def _write_atomic(dst: Path, body: str) -> None:
    """Write ``body`` to a temporary file beside ``dst`` and rename it over ``dst`` (no partial output)."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    except OSError as err:
        raise CleaningFileError(f"cannot write into {dst.parent}: {err.strerror}.") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions of a new file
        os.replace(tmp, dst)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise CleaningFileError(f"cannot write {dst}: {err.strerror}.") from None
        raise


# ---- formats -------------------------------------------------------------------------------------------------------
def _text_of(record: object, column: str, where: str, nulls: bool = False) -> None:
    if not isinstance(record, dict):
        raise CleaningFileError(f"{where} is a JSON {type(record).__name__}, not an object with a {column!r} field.")
    if column not in record:
        raise CleaningFileError(f"{where} has no {column!r} field (fields: {sorted(record)}); fix the record or "
                                "pass --text-column.")
    if not isinstance(record[column], str) and not (nulls and record[column] is None):
        raise CleaningFileError(f"{where}: field {column!r} is {json.dumps(record[column], ensure_ascii=False)[:40]}"
                                ", not a string (a null is allowed with --missing empty or keep).")


def _read_json(path: Path, text: str, column: str, nulls: bool = False) -> list[dict]:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as err:
        raise CleaningFileError(f"{path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}."
                                ) from None
    if not isinstance(records, list):
        raise CleaningFileError(f"{path}: expected a JSON list of objects (like the SMP2020-EWECT files), found a "
                                f"JSON {type(records).__name__}; use --format jsonl for one object per line.")
    for i, record in enumerate(records):
        has_id = isinstance(record, dict) and "id" in record
        where = f"{path}: record {i}" + (f" (id {record['id']})" if has_id else "")
        _text_of(record, column, where, nulls)
    return records


def _read_jsonl(path: Path, text: str, column: str, nulls: bool = False) -> list[dict]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CleaningFileError(f"{path} line {number}: not valid JSON ({err.msg} at column {err.colno})."
                                    ) from None
        _text_of(record, column, f"{path} line {number}", nulls)
        records.append(record)
    return records


def _read_csv(path: Path, text: str, column: str | None) -> dict:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise CleaningFileError(f"{path} is empty; a CSV file needs a header row.")
        if column is None:
            column = next((c for c in _CSV_TEXT_COLUMNS if c in header), None)
            if column is None:
                raise CleaningFileError(f"{path}: no text column found among {header}; pass --text-column NAME.")
        elif column not in header:
            raise CleaningFileError(f"{path}: --text-column {column!r} is not in the header {header}.")
        index = header.index(column)
        rows = []
        for row in reader:
            if len(row) != len(header):
                if not row:  # a blank line
                    continue
                raise CleaningFileError(f"{path} line {reader.line_num}: {len(row)} fields where the header has "
                                        f"{len(header)}; fix the quoting of this record.")
            rows.append(row)
    except csv.Error as err:
        raise CleaningFileError(f"{path} line {reader.line_num}: unreadable CSV ({err}).") from None
    newline = "\r\n" if "\r\n" in text[: text.find("\n") + 1] else "\n"
    return {"header": header, "rows": rows, "column": index, "newline": newline}


def _write_csv(table: dict, rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=table["newline"])
    writer.writerow(table["header"])
    writer.writerows(rows)
    return out.getvalue()


def cli() -> None:
    """The ``clean-weibo`` console script: ``main`` under ``run_cli`` (one-line errors, exit 2)."""
    from .cli import run_cli

    run_cli(main, prog=PROG)


if __name__ == "__main__":
    cli()
