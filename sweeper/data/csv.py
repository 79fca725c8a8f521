"""Reading a user's CSV file into a DataFrame, and fingerprinting it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from sweeper.errors import DataError


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_path(path: str | Path) -> Path:
    """Absolute path of an existing regular file, or DataError naming `data.path`."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise DataError(f"data.path: file '{resolved}' does not exist")
    if not resolved.is_file():
        raise DataError(f"data.path: '{resolved}' is not a file")
    return resolved


def read_csv(path: str | Path) -> pd.DataFrame:
    """The CSV at `path` as a DataFrame with a RangeIndex (row 1 of messages = index 0).

    Spaces after a delimiter are skipped so `yes, no` files read the same as `yes,no`.
    Raises DataError (one line naming the file) when the file is missing, empty, has no
    data rows, is not UTF-8 text or is not parseable as CSV.
    """
    resolved = resolve_path(path)
    try:
        frame = pd.read_csv(resolved, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"data.path: file '{resolved}' is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(
            f"data.path: file '{resolved}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    except (pd.errors.ParserError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"data.path: file '{resolved}' is not a readable CSV: {first_line}") from None
    except OSError as exc:
        raise DataError(f"data.path: file '{resolved}' cannot be read: {exc.strerror}") from None
    if len(frame) == 0:
        raise DataError(f"data.path: file '{resolved}' has a header but no data rows")
    return frame.reset_index(drop=True)
