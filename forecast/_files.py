"""Open a user's table file (CSV or Parquet) with every field as text, or say clearly why not.

Checked before pandas sees the file, each failure one line naming the file:
missing file or a folder, an empty file, damaged UTF-16, NUL bytes (a binary
file), a Parquet file under a ``.csv`` name or a ``.parquet`` file that is not
Parquet, text that is not UTF-8, and a column name given twice (also after
stripping and lower-casing; pandas would silently rename it ``date.1``).

Encoding: UTF-8 with or without BOM, and UTF-16 with its byte-order mark (Excel's
"Unicode text"; the mark makes it unambiguous). We do not guess another encoding
(cp1252 and latin-1 decode *any* bytes, so a wrong guess silently garbles
province names); a file that is not UTF-8 is an error that says to save it as
UTF-8.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.exceptions import DataValidationError, Problem

PARQUET_SUFFIXES = (".parquet", ".pq")
_SAVE_UTF8 = "Save the file as UTF-8 CSV (Excel: 'CSV UTF-8')."


def _fail(path: Path, check: str, hint: str = "", column: str = "<file>") -> DataValidationError:
    return DataValidationError([Problem(column, check, hint=hint)], source=path.name)


def read_table(path: Path) -> tuple[pd.DataFrame, int]:
    """Read CSV or Parquet with every CSV field as text; return (frame, first data row number).

    Column names are stripped and lower-cased. The first data row of a CSV is
    row 2 (the header is row 1, as a spreadsheet shows it); of Parquet, row 1.
    When a CSV has blank lines (which the parsers skip), ``frame.attrs["rows"]``
    holds every row's spreadsheet number.

    Raises
    ------
    DataValidationError
        One line saying what is wrong with the file and what to do.
    """
    if not path.exists():
        raise DataValidationError([Problem("<file>", "file not found", hint=f"Check the path {path}.")],
                                  source=str(path))
    if path.is_dir():
        raise _fail(path, "is a folder, not a file", "Give the path of the CSV or Parquet file.")
    with path.open("rb") as fh:
        data = fh.read()
    is_parquet = data[:4] == b"PAR1"
    if path.suffix.lower() in PARQUET_SUFFIXES:
        if not (is_parquet and data[-4:] == b"PAR1"):
            raise _fail(path, "not a Parquet file (it lacks the PAR1 markers)",
                        "Export it again as Parquet, or give a CSV file with a .csv name.")
        try:
            frame = pd.read_parquet(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise _fail(path, f"not a readable Parquet file ({type(exc).__name__})",
                        "Export it again as Parquet or as a UTF-8 CSV.") from None
        check_column_names([str(c) for c in frame.columns], path.name)
        frame.columns = [str(c).strip().lstrip("\ufeff").lower() for c in frame.columns]
        return frame, 1
    if is_parquet:
        raise _fail(path, "is a Parquet file with a text-file name", "Rename it to end in .parquet.")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        # Excel's "Unicode text" export: its byte-order mark says unambiguously how to read it.
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            raise _fail(path, "damaged UTF-16 text (it starts with a UTF-16 byte-order mark)", _SAVE_UTF8) from None
    blank = b"\xef\xbb\xbf \r\n\t"
    if not data[:65536].strip(blank) and not data.strip(blank):  # no 60 MB copy for a normal file
        raise _fail(path, "the file is empty", "Export the log again; it has no header and no rows.")
    if b"\x00" in data:
        raise _fail(path, "contains NUL bytes: a binary file or UTF-16 text, not a CSV",
                    "Give a CSV saved as UTF-8 text, or a Parquet file named .parquet.")
    body = data[3:] if data[:3] == b"\xef\xbb\xbf" else data
    # The header alone is decoded now; the whole file only when something is wrong
    # (decoding 60 MB costs more than the checks themselves).
    first_line = re.split(r"\r\n|\r|\n", _decode(path, body[:65536], final=False), maxsplit=1)[0]
    sep = max((",", ";", "\t"), key=first_line.count)
    try:
        header = next(csv.reader([first_line], delimiter=sep))
    except csv.Error as exc:
        raise _fail(path, f"unreadable header line ({exc})", "Check the quoting of the first line.") from None
    check_column_names(header, path.name)
    buf = io.BytesIO(body)
    try:
        try:
            # pyarrow's parser is several times faster on large logs; the C parser
            # is the fallback and gives the clearer message for malformed files.
            frame = pd.read_csv(buf, sep=sep, dtype=str, keep_default_na=False, engine="pyarrow")
        except Exception:
            text = _decode(path, body)
            # pyarrow refuses rows longer than the header; the C parser would
            # silently turn their first fields into an index and shift the rest.
            long_rows = _long_rows(text, sep, len(header))
            if long_rows:
                raise DataValidationError([Problem("<file>", f"more fields than the header's {len(header)}",
                                                   rows=long_rows,
                                                   hint=f"Quote fields that contain the separator {sep!r}, "
                                                        "or remove the extra separators.")],
                                          source=path.name) from None
            buf.seek(0)
            frame = pd.read_csv(buf, sep=sep, dtype=str, keep_default_na=False, index_col=False)
    except DataValidationError:
        raise
    except pd.errors.ParserError as exc:
        raise _fail(path, f"malformed CSV ({str(exc).strip()})",
                    "Check quoting and the number of fields per row.") from None
    except (ValueError, csv.Error) as exc:
        raise _fail(path, f"unreadable CSV ({str(exc).strip() or type(exc).__name__})",
                    "Check that the file is a comma, semicolon or tab separated text file.") from None
    frame.columns = [str(c).strip().lstrip("\ufeff").lower() for c in frame.columns]
    eol = b"\n" if b"\n" in body[:65536] else b"\r"
    if body.count(eol) + (not body.endswith(eol)) > len(frame) + 1:
        # Blank lines (or fields spanning lines): both parsers skip blank lines,
        # which would shift every later row number, so the records are numbered here.
        rows = _record_rows(_decode(path, body), sep)
        if rows is not None and len(rows) == len(frame):
            frame.attrs["rows"] = rows
    return frame, 2


def _decode(path: Path, data: bytes, final: bool = True) -> str:
    """UTF-8 text, or the error naming the line of the first bad byte."""
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=final)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise _fail(path, f"not UTF-8 text (first bad byte on line {line})", _SAVE_UTF8) from None


def _record_rows(text: str, sep: str) -> np.ndarray | None:
    """Spreadsheet row numbers of the non-blank records after the header."""
    try:
        rows = [i for i, rec in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sep), start=1)
                if rec]
    except csv.Error:
        return None
    return np.asarray(rows[1:], dtype="int64")


def _long_rows(text: str, sep: str, width: int) -> list[int]:
    """Spreadsheet row numbers (header = 1) of records with more than ``width`` fields."""
    try:
        return [i for i, rec in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=sep), start=1)
                if len(rec) > width]
    except csv.Error:
        return []  # the C parser then names the quoting problem


def check_column_names(names: list[str], source: str) -> None:
    """A column name given twice (after strip and lower-case) is an error naming both positions (1 = first)."""
    seen: dict[str, int] = {}
    problems = []
    for pos, raw in enumerate(names, start=1):
        name = raw.strip().lstrip("\ufeff").lower()
        if not name:
            continue  # trailing separators: pandas names these "Unnamed: n"; not a clash
        if name in seen:
            problems.append(Problem(name, f"column name given twice (columns {seen[name]} "
                                    f"and {pos} of the header)",
                                    hint="Rename or delete one of them, so it is clear which one to read."))
        else:
            seen[name] = pos
    if problems:
        raise DataValidationError(problems, source=source)
