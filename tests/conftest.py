"""Shared test set-up."""

from pathlib import Path

import pytest
import torch

EXAMPLE_SONG = Path(__file__).resolve().parents[1] / "examples" / "elf-land.ogg"


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests use tiny models, which run as fast on one thread as on two, and about twenty
    times faster than on two threads that compete with another process for two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def example_song() -> Path:
    """The real recording that ships with the project (Ogg Vorbis, 44.1 kHz stereo, tagged)."""
    return EXAMPLE_SONG
