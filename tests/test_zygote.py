"""The tests' zygote (``tests/zygote.py``) starts a command as a fresh interpreter would."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.zygote import Zygote, command_env

pytestmark = pytest.mark.slow  # it starts processes: not in `make check`

SCRIPT = """
import json, os, sys, threading
print(json.dumps({"cwd": os.getcwd(), "argv": sys.argv[1:], "path0": sys.path[0],
                  "seen": os.environ.get("SEEN"), "gone": "GONE" in os.environ,
                  "sweeper": "sweeper" in sys.modules, "main": __name__}))
print("to stderr\\r\\nline", file=sys.stderr)
threading.Thread(target=lambda: print("joined at exit", flush=True)).start()
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture(scope="module")
def zygote():
    started = Zygote(command_env())
    yield started
    started.stop()


def test_a_forked_command_gets_its_folder_argv_environment_files_and_exit_code_as_a_fresh_one(
        zygote, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    (tmp_path / "elsewhere").mkdir()
    env = command_env({"SEEN": "yes", "GONE": None})
    forked = zygote.run([str(script), "3", "b c"], env, tmp_path / "elsewhere", timeout=60)
    fresh = subprocess.run([sys.executable, str(script), "3", "b c"], env=env, cwd=tmp_path / "elsewhere",
                           capture_output=True, text=True, timeout=60)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 3 and '"seen": "yes"' in forked.stdout and '"sweeper": false' in forked.stdout
    assert forked.stdout.endswith("joined at exit\n")  # non-daemon threads end before the process


def test_a_command_past_its_timeout_is_killed_and_a_startup_variable_gets_a_fresh_interpreter(zygote, tmp_path):
    script = tmp_path / "sleep.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as expired:
        zygote.run([str(script)], command_env(), tmp_path, timeout=2)
    assert time.monotonic() - started < 20 and expired.value.output == b"started\n"
    assert not zygote.forks(command_env({"MPLBACKEND": "pdf"}))
    assert not zygote.forks(command_env({"PYTHONHASHSEED": "1"}))
    assert zygote.forks(command_env({"PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": "sqlite:///x.db"}))
