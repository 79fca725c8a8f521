"""The errors a user sees as one line: the message names the key, column or file at fault."""


class SweeperError(Exception):
    """Base of every error reported to the user as one line without a traceback."""


class ConfigError(SweeperError, ValueError):
    """A config key is unknown, mistyped or out of range."""


class DataError(SweeperError, ValueError):
    """A CSV file, column or value cannot be used."""


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, for reasons and messages that must stay on one line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
