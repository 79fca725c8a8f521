"""The errors a user sees as one line: the message names the key, column or file at fault."""


class SweeperError(Exception):
    """Base of every error reported to the user as one line without a traceback."""


class ConfigError(SweeperError, ValueError):
    """A config key is unknown, mistyped or out of range."""


class DataError(SweeperError, ValueError):
    """A CSV file, column or value cannot be used."""
