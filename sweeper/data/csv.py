"""Reading a user's CSV file into a DataFrame, and fingerprinting it.

The dialect is found, not asked for: ``data.sep`` null sniffs the delimiter among ``, ; TAB |``
from the file's first 64 KiB; ``data.encoding`` null reads UTF-8 (a byte-order mark is skipped)
and falls back to latin-1 with a log line. A file written with ``;`` and decimal commas (a
spreadsheet's export in many locales) reads its ``3,5`` cells as 3.5. Missing cells are pandas'
NA tokens (empty, ``NA``, ``NaN``, ``null``, ``N/A``, …) plus ``data.na_values``.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import logging
import re
from pathlib import Path
from typing import Sequence

import pandas as pd
from pandas.api.types import is_numeric_dtype

from sweeper.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SEPARATORS = (",", ";", "\t", "|")
_SNIFF_BYTES = 1 << 16
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+(,\d+)?$")


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks so large files need little memory."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def resolve_path(path: str | Path, key: str = "data.path") -> Path:
    """Absolute path of an existing regular file, or DataError naming `key` (the key or
    argument that gave `path`)."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise DataError(f"{key}: file '{resolved}' does not exist")
    if not resolved.is_file():
        raise DataError(f"{key}: '{resolved}' is not a file")
    return resolved


def sniff_separator(sample: str) -> str:
    """The delimiter of CSV text `sample` among `SEPARATORS`: csv.Sniffer's answer, else the
    one that splits the header into the most fields (``,`` on a tie or a one-column file)."""
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        header = sample.splitlines()[0] if sample.strip() else ""
        widths = {sep: len(next(csv.reader([header], delimiter=sep), [])) for sep in SEPARATORS}
        return max(SEPARATORS, key=lambda sep: (widths[sep], sep == ","))


#: Names a shell makes easier to type than the character itself.
_SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def separator(sep: str | None) -> str | None:
    """``data.sep`` as the character: ``tab`` (or ``\\t``), ``comma``, ``semicolon``, ``pipe`` and
    ``space`` name theirs; None stays None (sniff)."""
    return _SEPARATOR_NAMES.get(str(sep).lower(), sep) if isinstance(sep, str) else sep


def check_dialect(sep: str | None, encoding: str | None) -> None:
    """ConfigError naming ``data.sep`` or ``data.encoding`` when either cannot be used."""
    char = separator(sep)
    if char is not None and (not isinstance(char, str) or len(char) != 1 or char in "\"\n\r"):
        raise ConfigError(
            f"data.sep: {sep!r} is not a one-character delimiter; e.g. \"data.sep=';'\" (quoted for Hydra), "
            "data.sep=tab, or null to sniff"
        )
    if encoding is not None:
        try:
            codecs.lookup(str(encoding))
        except LookupError:
            raise ConfigError(
                f"data.encoding: {encoding!r} is not an encoding Python knows; e.g. utf-8, latin-1, cp1252, or null"
            ) from None


def _header(path: Path, sep: str, encoding: str, sep_given: bool, key: str) -> list[str]:
    """The header's fields, once every row is checked to have as many: pandas would realign a
    row with more (its extra leading fields made the index, then dropped) or fewer (its last
    cells read as missing), so such a row is refused with its line number. A row may lack the
    nameless last columns a delimiter at the end of the header makes; blank lines are skipped,
    as pandas skips them."""
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=sep, skipinitialspace=True)
        header = next(reader, [])
        named = len(header)
        while named > 1 and not header[named - 1].strip():
            named -= 1
        line = reader.line_num + 1
        for row in reader:
            if (named <= len(row) <= len(header)) or not any(cell.strip() for cell in row):
                line = reader.line_num + 1
                continue
            raise DataError(f"{key}: {path.name} line {line} has {len(row)} fields, its header {len(header)}; "
                            f"the row is refused, not realigned{_other_separator(path, encoding, sep, line, sep_given)}")
    return header


def _other_separator(path: Path, encoding: str, sep: str, line: int, sep_given: bool) -> str:
    """The hint of a refused row: the separator it was read with, and another that splits the
    header and that line into as many fields (more than one), if there is one."""
    with open(path, encoding=encoding, newline="") as handle:
        texts = [text for number, text in enumerate(handle, start=1) if number in (1, line)]
    for other in SEPARATORS:
        widths = {len(next(csv.reader([text], delimiter=other), [])) for text in texts}
        if other != sep and len(widths) == 1 and widths.pop() > 1:
            name = next(name for name, char in _SEPARATOR_NAMES.items() if char == other and name.isalpha())
            return f" (read as {sep!r}-separated; data.sep={name} splits both into as many fields)"
    return f" (read as {sep!r}-separated{'' if sep_given else ', sniffed'})"


def _check_unique_header(names: Sequence[str], source: str, key: str) -> None:
    for position, name in enumerate(names, start=1):
        if names.index(name) + 1 < position:
            raise DataError(
                f"{key}: {source} has the column name {name!r} twice (columns {names.index(name) + 1} and "
                f"{position}); rename one in the file's header"
            )


def _decimal_commas(frame: pd.DataFrame) -> list[str]:
    """Convert text columns whose every cell is a number written with a decimal comma."""
    converted = []
    for name in frame.columns:
        series = frame[name]
        if is_numeric_dtype(series):
            continue
        present = series.dropna().astype(str)
        if len(present) and present.str.match(_DECIMAL_COMMA).all() and present.str.contains(",").any():
            frame[name] = pd.to_numeric(series.str.replace(",", ".", regex=False))
            converted.append(str(name))
    return converted


def read_csv(
    path: str | Path,
    sep: str | None = None,
    encoding: str | None = None,
    na_values: Sequence[str] = (),
    key: str = "data.path",
) -> pd.DataFrame:
    """The CSV at `path` as a DataFrame with a RangeIndex (row 1 of messages = index 0).

    `sep` None sniffs the delimiter; `encoding` None is UTF-8 with a latin-1 fallback;
    `na_values` are extra tokens read as missing. Spaces after a delimiter are skipped, so
    `yes, no` files read the same as `yes,no`. ``frame.attrs`` records ``sep``, ``encoding`` and
    ``decimal_comma`` (the columns read with a decimal comma). Raises DataError (one line naming
    the file or key) when the file is missing, empty, has no data rows, repeats a column name,
    has a row with more or fewer fields than its header (its line number), cannot be decoded or
    is not parseable as CSV. `key` is what the messages call the file: the config key or the
    command's argument that gave `path`.
    """
    resolved = resolve_path(path, key)
    check_dialect(sep, encoding)
    sep = separator(sep)
    source = resolved.name
    if resolved.stat().st_size == 0:
        raise DataError(f"{key}: file '{resolved}' is empty")
    encodings = [encoding] if encoding else ["utf-8-sig", "latin-1"]
    for attempt, chosen in enumerate(encodings):
        try:
            with open(resolved, "rb") as handle:
                sample = handle.read(_SNIFF_BYTES).decode(chosen, errors="ignore")
            used_sep = sep or sniff_separator(sample)
            header = _header(resolved, used_sep, chosen, sep is not None, key)
            frame = pd.read_csv(
                resolved, sep=used_sep, encoding=chosen, skipinitialspace=True,
                na_values=list(na_values), keep_default_na=True,
            )
        except UnicodeDecodeError as exc:
            if attempt + 1 < len(encodings):
                continue
            raise DataError(
                f"data.encoding: file '{resolved}' is not {chosen} text (byte {exc.start}); "
                "set data.encoding (e.g. cp1252) or save it as UTF-8"
            ) from None
        except DataError:  # a row that does not match its header (_header): said as it is
            raise
        except pd.errors.EmptyDataError:
            raise DataError(f"{key}: file '{resolved}' is empty") from None
        except (pd.errors.ParserError, ValueError, csv.Error) as exc:  # csv.Error: a cell over 128 KiB
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = "" if sep else f" (read with the sniffed data.sep={used_sep!r}; set data.sep if that is wrong)"
            raise DataError(f"{key}: file '{resolved}' is not a readable CSV: {first_line}{hint}") from None
        except OSError as exc:
            raise DataError(f"{key}: file '{resolved}' cannot be read: {exc.strerror}") from None
        if attempt > 0:
            log.info("data: %s is not UTF-8; read it as %s (set data.encoding to choose)", source, chosen)
        break
    _check_unique_header([name.strip() for name in header if name.strip()], source, key)
    # A delimiter at the end of every line makes a nameless, empty column: not the user's data.
    frame = frame.drop(columns=[c for c, name in zip(frame.columns, header)
                                if not name.strip() and frame[c].isna().all()])
    if len(frame) == 0:
        raise DataError(f"{key}: file '{resolved}' has a header but no data rows")
    frame = frame.reset_index(drop=True)
    converted = _decimal_commas(frame) if used_sep != "," else []
    frame.attrs.update({"sep": used_sep, "encoding": "utf-8" if chosen == "utf-8-sig" else chosen,
                        "decimal_comma": converted})
    return frame
