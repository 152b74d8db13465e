r"""Text tables read whole, or in parts that other processes read on their own.

:func:`read_text_csv` is how the commands read a table of records (``gridplan geocode``): every
column as text, empty cells ``''``, UTF-8 with or without a BOM, else GB18030.

:func:`split_text_csv` reads a CSV once, in a stream, without keeping it: it picks the encoding as
:func:`read_text_csv` would and finds the byte offsets where every *chunk_rows*-th record ends,
following pandas' tokenizer (a quoted field may hold commas and line breaks; a lone CR ends a
record as CRLF and LF do; blank lines are no records).  :func:`read_csv_part` then reads one part
anywhere the file is visible: the header's bytes followed by the part's bytes, parsed exactly as
:func:`read_text_csv` parses the whole file, so the parts, concatenated, are the whole table.

Examples
--------
>>> import tempfile
>>> p = Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = p.write_bytes(b'id,address\r\n1,"a, b"\r\n2,"two\nlines"\r\n\r\n3,c\r\n')
>>> parts = split_text_csv(p, chunk_rows=2)
>>> parts.rows, [r.rows for r in parts.ranges]
(3, [2, 1])
>>> pd.concat([read_csv_part(parts, k) for k in range(2)], ignore_index=True).equals(read_text_csv(p))
True

"""

from __future__ import annotations

import codecs
import io
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from gridplan.errors import InputError

__all__ = ["CsvPart", "CsvParts", "read_csv_part", "read_text_csv", "split_text_csv"]

#: The encodings tried, in order (GB18030 is a superset of GBK and GB2312).
ENCODINGS = ("utf-8-sig", "gb18030")
_BLOCK = 1 << 24
_STOP = re.compile(rb"[,\r\n]")


def _read_kw(encoding: str) -> dict[str, object]:
    return {"dtype": str, "keep_default_na": False, "encoding": encoding}


def _parse(source: str | os.PathLike[str] | io.BytesIO, encoding: str, file: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(source, **_read_kw(encoding))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"not a readable CSV ({str(exc).splitlines()[0]})", file=file) from None
    if not isinstance(df.index, pd.RangeIndex):
        # pandas takes the first columns as the index when the first row has more fields than the
        # header: the columns would be shifted, so refuse as it refuses such a row further down
        raise InputError(
            f"not a readable CSV (the first row has more fields than the header's {len(df.columns)})",
            file=file,
        )
    return df


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        raise InputError("is a folder; give a CSV file", file=path)


def read_text_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV as text columns (UTF-8 with or without BOM, else GB18030); empty cells stay ''.

    Raises
    ------
    InputError
        No such file, a folder, not a CSV, or text in neither encoding.

    """
    p = Path(path)
    _check_file(p)
    last: Exception | None = None
    for enc in ENCODINGS:
        try:
            return _parse(p, enc, p)
        except UnicodeDecodeError as exc:
            last = exc
    raise InputError(f"text is neither UTF-8 nor GB18030 ({last})", file=p)


def _encoding(path: Path) -> str:
    """Return the first of :data:`ENCODINGS` that decodes the whole file (read in blocks, not kept)."""
    last: Exception | None = None
    for enc in ENCODINGS:
        dec = codecs.getincrementaldecoder(enc)()
        try:
            with open(path, "rb") as fh:
                while block := fh.read(_BLOCK):
                    dec.decode(block)
                dec.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            last = exc
            continue
        return enc
    raise InputError(f"text is neither UTF-8 nor GB18030 ({last})", file=path)


@dataclass(frozen=True)
class CsvPart:
    """Bytes ``start:end`` of the file hold *rows* records."""

    start: int
    end: int
    rows: int


@dataclass(frozen=True)
class CsvParts:
    """A CSV file split at record ends (:func:`split_text_csv`).

    Attributes
    ----------
    path
        The file.
    encoding
        What :func:`read_text_csv` decodes it with.
    header
        The file's bytes up to the end of its header record (a BOM included).
    columns
        The header's column names, as pandas reads them (duplicates renamed ``x.1`` …).
    ranges
        The parts, in file order; at least one (an empty one for a table without rows).
    rows
        Records after the header (blank lines not counted).

    """

    path: Path
    encoding: str
    header: bytes
    columns: tuple[str, ...]
    ranges: tuple[CsvPart, ...]
    rows: int


class _Scanner:
    """Record ends of a byte stream, line by line, as pandas' C tokenizer finds them."""

    # states: 0 start of a field, 1 in an unquoted field, 2 in a quoted field, 3 quote in a quoted field
    def __init__(self) -> None:
        self.state = 0
        self.rec_start = 0  # offset in the file of the record being read
        self.blank = True  # the record so far holds spaces and tabs only

    def line(self, line: bytes, offset: int) -> list[tuple[int, bool]]:
        """Return ``(end offset, blank)`` for every record that ends in *line* (at *offset*)."""
        if self.state == 0 and self.blank and b'"' not in line and b"\r" not in line[:-2]:
            blank = not line.strip(b" \t\r\n")
            if line.endswith((b"\n", b"\r")):
                self.rec_start = offset + len(line)
                return [(offset + len(line), blank)]
            self.blank = blank
            return []
        return self._slow(line, offset)

    def _slow(self, line: bytes, offset: int) -> list[tuple[int, bool]]:
        ends: list[tuple[int, bool]] = []
        i, n = 0, len(line)
        while i < n:
            st = self.state
            if st == 2:
                j = line.find(b'"', i)
                if j < 0:
                    return ends
                i, self.state = j + 1, 3
                continue
            if st == 1:
                m = _STOP.search(line, i)
                j = n if m is None else m.start()
                if self.blank and line[i:j].strip(b" \t"):
                    self.blank = False
                if m is None:
                    return ends
            else:
                j = i
            c = line[j]
            if c == 0x22 and st != 1:  # '"' opens a quoted field, or is an escaped quote in one
                self.state, self.blank, i = 2, False, j + 1
            elif c == 0x2C:  # ','
                self.state, self.blank, i = 0, False, j + 1
            elif c in (0x0A, 0x0D):
                nxt = line[j + 1 : j + 2]
                # CRLF is one end; pandas also drops a comma right after the CR of a blank line
                end = j + 2 if c == 0x0D and (nxt == b"\n" or (self.blank and nxt == b",")) else j + 1
                ends.append((offset + end, self.blank))
                self.state, self.blank, self.rec_start, i = 0, True, offset + end, end
            else:
                if c not in (0x20, 0x09):
                    self.blank = False
                self.state, i = 1, j + 1
        return ends


def split_text_csv(path: str | os.PathLike[str], *, chunk_rows: int) -> CsvParts:
    """Split a CSV into parts of *chunk_rows* records, reading it as a stream (nothing is kept).

    Parameters
    ----------
    path
        The CSV (UTF-8 with or without BOM, or GB18030).
    chunk_rows
        Records per part (the last part holds the rest); ``ceil(rows / chunk_rows)`` parts.

    Raises
    ------
    InputError
        As :func:`read_text_csv` (no header: "not a readable CSV").

    """
    p = Path(path)
    _check_file(p)
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, got {chunk_rows}", field="chunk_rows")
    enc = _encoding(p)
    scan = _Scanner()
    header_end: int | None = None
    cuts: list[int] = []
    rows = 0
    offset = 0
    with open(p, "rb") as fh:
        for line in fh:
            for end, blank in scan.line(line, offset):
                if blank:
                    continue
                if header_end is None:
                    header_end = end
                    continue
                rows += 1
                if rows % chunk_rows == 0:
                    cuts.append(end)
            offset += len(line)
    if header_end is None and not scan.blank:  # a header without a line break
        header_end = offset
    elif header_end is not None and not scan.blank and scan.rec_start < offset:
        rows += 1  # a last record without a line break
    if cuts and len(cuts) * chunk_rows >= rows:
        cuts.pop()  # the last record ends the last part
    if header_end is None:
        raise InputError("not a readable CSV (No columns to parse from file)", file=p)
    with open(p, "rb") as fh:
        header = fh.read(header_end)
    columns = tuple(str(c) for c in _parse(io.BytesIO(header), enc, p).columns)
    bounds = [header_end, *[c for c in cuts if c < offset], offset]
    ranges: list[CsvPart] = []
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        ranges.append(CsvPart(a, b, min(chunk_rows, rows - k * chunk_rows)))
    return CsvParts(p, enc, header, columns, tuple(ranges), rows)


def read_csv_part(parts: CsvParts, k: int) -> pd.DataFrame:
    """Read part *k* of *parts* (the header's bytes, then the part's), as :func:`read_text_csv` would.

    The index is the rows' position in the whole table.
    """
    part = parts.ranges[k]
    with open(parts.path, "rb") as fh:
        fh.seek(part.start)
        body = fh.read(part.end - part.start)
    try:
        df = _parse(io.BytesIO(parts.header + body), parts.encoding, parts.path)
    except InputError as exc:
        raise InputError(f"{exc.reason}, in the part from byte {part.start}", file=parts.path) from None
    first = sum(r.rows for r in parts.ranges[:k])
    df.index = pd.RangeIndex(first, first + len(df))
    return df
