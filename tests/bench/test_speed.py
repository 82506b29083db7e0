"""`harmonycloak bench speed`: the real-time factor is the child's wall time over the track's length."""

import pytest

from harmonycloak.bench.speed import run_speed_benchmark
from harmonycloak.errors import SettingsError


def test_a_short_track_is_timed_in_a_child_and_a_memory_length_of_zero_skips_that_run(tmp_path):
    json_path = tmp_path / "speed.json"
    results = run_speed_benchmark(None, 3.0, ["blackbox"], None, "cpu", 0.0, json_path)
    [run] = results["runs"]  # no memory run
    assert (run["mode"], run["purpose"], run["sample_rate_hz"], run["channels"]) == ("blackbox", "speed", 44100, 2)
    assert run["duration_s"] == pytest.approx(3.0)
    assert run["real_time_factor"] == pytest.approx(run["elapsed_s"] / run["duration_s"])
    assert run["cpu_s"] > 0 and run["peak_memory_mb"] > 100 and run["rounds_run"] >= 1  # torch alone takes more
    assert json_path.read_text().count('"purpose"') == 1


@pytest.mark.parametrize("duration_s, memory_duration_s", [(0.0, 0.0), (-1.0, 600.0), (3.0, -1.0)])
def test_lengths_that_cannot_be_timed_are_refused_in_plain_words(duration_s, memory_duration_s):
    with pytest.raises(SettingsError, match="duration-s"):
        run_speed_benchmark(None, duration_s, ["blackbox"], None, "cpu", memory_duration_s, None)
