"""Run Python code in a fresh process, as a user's program or a model server would.

Nothing is shared with the test's process: no imported modules, no traced
graphs, no TensorFlow state. TensorFlow's start-up chatter is silenced.
"""

import json
import os
import subprocess
import sys


def run_python(code, *args, timeout=600, drop_env=()):
    """Run `python -c code args...`; the finished process (its exit status must be 0).

    `drop_env` names environment variables the child must not see.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in drop_env:
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                            text=True, env=env, timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def python_json(code, *args, timeout=600, drop_env=()):
    """Run the code like `run_python`; the JSON value on the last line it printed."""
    result = run_python(code, *args, timeout=timeout, drop_env=drop_env)
    return json.loads(result.stdout.strip().splitlines()[-1])
