"""What the app's tests share: the settings of a quick protection, the CLI's bytes for them, and
waiting for a job to finish."""

import time

from harmonycloak.cli import main

# A 3-second preview with the seconds-fast surrogates and one round: the same settings through the
# page's form and through the command line.
QUICK_FORM = {"preview_s": "3", "rounds": "1", "seed": "7", "strength": "low"}
QUICK_CLI = ["--preview", "3", "--rounds", "1", "--seed", "7", "--strength", "low", "--preset", "tiny"]
WAIT_LIMIT_S = 600.0  # a stuck job fails the test instead of hanging it; no test asserts on time


def cli_output_bytes(song, folder) -> bytes:
    """What `harmonycloak protect SONG -o FOLDER/ <QUICK_CLI>` writes."""
    assert main(["protect", str(song), "-o", f"{folder}/", *QUICK_CLI]) == 0
    (output,) = [path for path in folder.iterdir() if ".preview." in path.name and ".report." not in path.name]
    return output.read_bytes()


def wait_until(condition, what: str, poll_s: float = 0.2):
    """Poll `condition()` until it returns a true value (returned), or fail after WAIT_LIMIT_S."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"gave up waiting for {what}")
