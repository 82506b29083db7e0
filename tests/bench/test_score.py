"""PS arithmetic on hand-computed cases."""

import math

import pytest

from harmonycloak.bench.unlearnability.score import format_mean_std, mean_std, protection_score, relative_gap


def test_protection_score_known_values():
    # cloaked loss halfway between clean (0.2) and unseen (0.4): PS = 0.5
    assert protection_score(0.3, 0.2, 0.4) == pytest.approx(0.5)
    # cloak as good as never seeing the song
    assert protection_score(0.4, 0.2, 0.4) == pytest.approx(1.0)
    # cloak changed nothing
    assert protection_score(0.2, 0.2, 0.4) == pytest.approx(0.0)
    # cloaked songs learned better than clean ones: negative
    assert protection_score(0.1, 0.2, 0.4) == pytest.approx(-0.5)
    # worse than unseen: above one
    assert protection_score(0.5, 0.2, 0.4) == pytest.approx(1.5)


def test_protection_score_degenerate_gap_is_nan():
    assert math.isnan(protection_score(0.3, 0.25, 0.25))
    assert math.isnan(protection_score(0.3, 0.25, 0.25 + 1e-12))
    assert math.isnan(protection_score(math.nan, 0.2, 0.4))


def test_protection_score_negative_gap_keeps_sign():
    # unseen songs predicted better than seen ones (noise): (0.3-0.4)/(0.2-0.4) = 0.5
    assert protection_score(0.3, 0.4, 0.2) == pytest.approx(0.5)


def test_relative_gap():
    assert relative_gap(0.2, 0.25) == pytest.approx(0.25)
    assert math.isnan(relative_gap(0.0, 0.1))


def test_mean_std_sample_std_and_nan_dropped():
    mean, std, count = mean_std([1.0, 2.0, 3.0, math.nan])
    assert (mean, count) == (2.0, 3)
    assert std == pytest.approx(1.0)  # sqrt(((1)^2 + 0 + 1^2) / 2)
    assert mean_std([5.0]) == (5.0, 0.0, 1)
    assert mean_std([None, 1.0, 3.0, -math.inf]) == (2.0, pytest.approx(math.sqrt(2.0)), 2)  # as read back from JSON
    m, s, n = mean_std([math.nan])
    assert math.isnan(m) and math.isnan(s) and n == 0


def test_format_mean_std():
    assert format_mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00 (n=3)"
    assert format_mean_std([math.nan]) == "n/a"
    assert format_mean_std([0.5]) == "0.50 (n=1)"
