"""Crash safety of `harmonycloak protect`: interrupted, killed, raced, or out of disk space, it
never leaves a partial file under the output's name, and a second run succeeds.

The protect runs in a child process (the command line, as a musician runs it). To stop one
exactly while it writes, the child's file copy (the path a silent song takes to its output,
through the same atomic write as every output) is replaced by one that writes half the file,
says so with a marker file, and waits for a second marker before writing the rest.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from harmonycloak.cli import main
from input_makers import tone, write_soundfile

QUICK = ["--preset", "tiny", "--rounds", "1", "--no-report"]
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
START_TIMEOUT_S = 120  # the child imports PyTorch first: seconds on a busy machine

# A child that runs the command line with its file copy paused half way (see the docstring).
# argv: READY_MARKER GO_MARKER COMMAND-LINE...
PAUSING_CHILD = """
import shutil, sys, time
from pathlib import Path

def copy_half_then_wait(source, target, **options):
    data = Path(source).read_bytes()
    Path(target).write_bytes(data[: len(data) // 2])
    Path(sys.argv[1]).touch()
    while not Path(sys.argv[2]).exists():
        time.sleep(0.01)
    Path(target).write_bytes(data)
    return target

shutil.copyfile = copy_half_then_wait
from harmonycloak.cli import main
sys.exit(main(sys.argv[3:]))
"""


def silent_song(path: Path) -> Path:
    """A silent song: protect copies it through unchanged, so the copy is the whole work."""
    return write_soundfile(path, np.zeros((2, 44_100)), 44_100)


def with_interrupts_as_a_shell_leaves_them() -> None:
    """In the child, before it starts: Ctrl-C (SIGINT) at its default and unblocked, as a shell
    starts a command. A child inherits an ignored or blocked signal from its parent, and the
    test runner's process may hold SIGINT so after an earlier test; the musician's shell does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def pausing_child(ready: Path, go: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PAUSING_CHILD, str(ready), str(go), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV,
                            preexec_fn=with_interrupts_as_a_shell_leaves_them)


def wait_for(path: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not path.exists():
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never reached the write"
        time.sleep(0.02)


def wait_for_progress(child: subprocess.Popen) -> str:
    """Read the child's stderr until its progress bar shows that the optimisation runs."""
    seen = b""
    deadline = time.monotonic() + START_TIMEOUT_S
    while b"%|" not in seen:
        assert time.monotonic() < deadline, seen.decode(errors="replace")
        ready, _, _ = select.select([child.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(child.stderr.fileno(), 4096)
            assert chunk, f"the child ended early: {seen.decode(errors='replace')}"
            seen += chunk
    return seen.decode(errors="replace")


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_stopped_while_optimising_leaves_nothing_and_a_rerun_succeeds(tmp_path, signal_number):
    song = write_soundfile(tmp_path / "song.wav", tone(3 * 22_050, 22_050, 2), 22_050)
    output = tmp_path / "song.protected.wav"
    child = subprocess.Popen([sys.executable, "-m", "harmonycloak.cli", "protect", str(song), "--preset", "tiny",
                              "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV,
                             preexec_fn=with_interrupts_as_a_shell_leaves_them)
    with child:
        wait_for_progress(child)
        child.send_signal(signal_number)
        _, stderr = child.communicate(timeout=START_TIMEOUT_S)
    if signal_number == signal.SIGINT:
        assert child.returncode == 130 and "interrupted" in stderr.decode() and "Traceback" not in stderr.decode()
    else:
        assert child.returncode == -signal.SIGKILL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]
    assert main(["protect", str(song), *QUICK]) == 0
    assert soundfile.info(str(output)).frames == soundfile.info(str(song)).frames


def test_interrupted_while_writing_leaves_nothing(tmp_path):
    song = silent_song(tmp_path / "song.wav")
    ready, go = tmp_path.parent / f"{tmp_path.name}-ready", tmp_path.parent / f"{tmp_path.name}-go"
    with pausing_child(ready, go, "protect", str(song), "-o", str(tmp_path / "out.wav"), *QUICK) as child:
        wait_for(ready, child)
        assert any(p.name.endswith(".partial.wav") for p in tmp_path.iterdir())  # half written, hidden
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=START_TIMEOUT_S)
    assert child.returncode == 130 and "interrupted" in stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_killed_while_writing_leaves_no_output_and_a_rerun_cleans_up(tmp_path):
    song = silent_song(tmp_path / "song.wav")
    output = tmp_path / "out.wav"
    ready, go = tmp_path.parent / f"{tmp_path.name}-ready", tmp_path.parent / f"{tmp_path.name}-go"
    with pausing_child(ready, go, "protect", str(song), "-o", str(output), *QUICK) as child:
        wait_for(ready, child)
        child.kill()
        child.communicate(timeout=START_TIMEOUT_S)
    left = [p.name for p in tmp_path.iterdir() if p.name != "song.wav"]
    assert not output.exists() and len(left) == 1 and left[0].startswith(".out.")  # only a hidden temporary
    assert main(["protect", str(song), "-o", str(output), *QUICK]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav", "song.wav"]
    assert output.read_bytes() == song.read_bytes()


def test_two_processes_writing_one_output_end_with_one_whole_file(tmp_path):
    song = silent_song(tmp_path / "song.wav")
    output = tmp_path / "out.wav"
    markers = tmp_path.parent / f"{tmp_path.name}-markers"
    markers.mkdir()
    go = markers / "go"
    children = [pausing_child(markers / f"ready-{i}", go, "protect", str(song), "-o", str(output), *QUICK)
                for i in range(2)]
    with contextlib.ExitStack() as stack:
        for child in children:
            stack.enter_context(child)
        for i, child in enumerate(children):
            wait_for(markers / f"ready-{i}", child)  # both half way through writing the same output
        assert len([p for p in tmp_path.iterdir() if p.name.endswith(".partial.wav")]) == 2
        go.touch()
        results = [child.communicate(timeout=START_TIMEOUT_S) for child in children]
    assert [child.returncode for child in children] == [0, 0], results
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav", "song.wav"]
    assert output.read_bytes() == song.read_bytes()


@contextlib.contextmanager
def small_disk(folder: Path, size_kib: int):
    """A tmpfs of ``size_kib`` mounted on ``folder``; yields False where mounting is not allowed."""
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


def test_disk_full_while_writing_leaves_no_partial_file_and_says_so(tmp_path, capsys, monkeypatch):
    """A 1.1 MB output onto a 256 KiB disk; where no disk can be mounted, the audio library's
    writes fail with ENOSPC after the first block instead."""
    song = write_soundfile(tmp_path / "song.wav", tone(192_000, 192_000, 2), 192_000, "PCM_24")
    with small_disk(tmp_path / "disk", 256) as mounted:
        if not mounted:
            real_write = soundfile.SoundFile.write

            def write_then_run_out(self, data):
                if getattr(self, "_blocks_written", 0):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self._blocks_written = 1
                return real_write(self, data)

            monkeypatch.setattr(soundfile.SoundFile, "write", write_then_run_out)
        code = main(["protect", str(song), "-o", str(tmp_path / "disk" / "out.wav"), *QUICK])
        error = capsys.readouterr().err
        left = sorted(p.name for p in (tmp_path / "disk").iterdir())
    assert code == 1
    assert f"error: {tmp_path / 'disk' / 'out.wav'}: " in error and "No space left on device" in error
    assert left == []
