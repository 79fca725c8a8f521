"""The errors a user sees as one line: the message names the key, column or file at fault."""


class SweeperError(Exception):
    """Base of every error reported to the user as one line without a traceback."""


class ConfigError(SweeperError, ValueError):
    """A config key is unknown, mistyped or out of range."""


class DataError(SweeperError, ValueError):
    """A CSV file, column or value cannot be used."""


class StoreError(SweeperError):
    """The MLflow tracking store or the Optuna storage stopped working: not the trial's fault.

    The message names ``mlflow.tracking_uri`` or ``hydra.sweeper.storage`` (password hidden). A
    sweep stops at the first one (every later trial would fail the same way) and resumes when
    the command is run again.
    """


class JobLost(SweeperError):
    """A trial's job ended without a result: its process was killed (``scancel``, a lost node,
    the out-of-memory killer) before it could say how the trial went. Not the trial's fault: a
    launcher returns it as the job's failure, and the sweeper fails the trial and retries it
    once with the same parameters, as it does for a trial whose sweeper died."""


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception ``error`` was raised from (``__cause__``, else ``__context__``):
    MLflow and Optuna wrap a database's own words ("unable to open database file") in theirs."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or error.__context__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def one_line(error: BaseException) -> str:
    """``Type: first line of the message``, for reasons and messages that must stay on one line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def sendable(error: Exception) -> Exception:
    """``error`` as another process can receive it through a pipe: itself when it comes out of
    pickle as it went in, else a RuntimeError holding its line (an exception whose ``__init__``
    takes other arguments than its message pickles, but does not unpickle)."""
    import pickle

    try:
        if type(pickle.loads(pickle.dumps(error))) is type(error):
            return error
    except Exception:
        pass
    return RuntimeError(one_line(error))
