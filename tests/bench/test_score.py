"""PS arithmetic on hand-computed cases; paired seeds; the bootstrap interval and the decision rule."""

import math

import numpy as np
import pytest

from harmonycloak.bench.unlearnability.score import (
    ScoreInterval,
    beats,
    bootstrap_interval,
    format_mean_std,
    mean_std,
    mimicry_scores_paired,
    protection_score,
    protection_scores_paired,
    relative_gap,
)
from harmonycloak.errors import HarmonyCloakError


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


# --- paired seeds, both threat models, bootstrap interval ---------------------------------------

def test_paired_scratch_scores_by_hand():
    # seeds × songs; PS = (cloaked − clean) / (unseen − clean) in each cell
    clean = np.array([[0.20, 0.30], [0.25, 0.35]])
    unseen = np.array([[0.40, 0.50], [0.45, 0.40]])
    cloaked = np.array([[0.30, 0.30], [0.45, 0.45]])
    expected = np.array([[0.10 / 0.20, 0.0], [0.20 / 0.20, 0.10 / 0.05]])
    np.testing.assert_allclose(protection_scores_paired(cloaked, clean, unseen), expected)


def test_paired_mimicry_scores_by_hand_with_the_base_model_as_reference():
    # one base model: its loss per song, before fine-tuning (the reference, PS = 1)
    base = np.array([2.0, 1.5])
    ft_clean = np.array([[1.0, 1.0], [1.2, 0.9]])
    ft_cloaked = np.array([[1.5, 1.25], [1.6, 1.2]])
    # (1.5−1)/(2−1), (1.25−1)/(1.5−1), (1.6−1.2)/(2−1.2), (1.2−0.9)/(1.5−0.9)
    np.testing.assert_allclose(mimicry_scores_paired(ft_cloaked, ft_clean, base), [[0.5, 0.5], [0.5, 0.5]])
    # the cloaked release as good as the clean one: 0; as useless as none: 1
    np.testing.assert_allclose(mimicry_scores_paired(ft_clean, ft_clean, base), 0.0)
    np.testing.assert_allclose(mimicry_scores_paired(np.broadcast_to(base, (2, 2)), ft_clean, base), 1.0)
    # fine-tuning that did not move the loss: no score
    assert np.isnan(mimicry_scores_paired(ft_cloaked, ft_clean, ft_clean)).all()


def test_paired_scores_nan_where_a_loss_is_missing_or_the_gap_is_zero():
    clean = np.array([[1.0, 1.0, 1.0]])
    scores = protection_scores_paired([[1.1, np.nan, 1.1]], clean, [[1.2, 1.2, 1.0]])
    assert scores[0, 0] == pytest.approx(0.5) and np.isnan(scores[0, 1:]).all()


def test_paired_scores_refuse_mismatched_shapes():
    with pytest.raises(HarmonyCloakError):
        protection_scores_paired(np.ones((2, 3)), np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(HarmonyCloakError):
        mimicry_scores_paired(np.ones((2, 3)), np.ones((2, 3)), np.ones(2))
    with pytest.raises(HarmonyCloakError):
        protection_scores_paired(np.ones(3), np.ones(3), np.ones(3))


def test_point_score_is_a_ratio_of_mean_losses_not_a_mean_of_ratios():
    # song 2 was barely learnt (gap 0.02): its own ratio is 1.5, and would dominate a mean
    clean, unseen, cloaked = [[1.0, 1.0]], [[1.4, 1.02]], [[1.2, 1.03]]
    interval = bootstrap_interval(cloaked, clean, unseen, n_resamples=50)
    # means: cloaked 1.115, clean 1.0, unseen 1.21 → 0.115 / 0.21 = 23/42
    assert interval.ps == pytest.approx(23 / 42)
    assert (interval.n_seeds, interval.n_songs) == (1, 2)


def test_interval_collapses_to_the_point_when_every_resample_is_identical():
    # every seed and song alike: every resample has the same means
    clean, unseen, cloaked = np.full((3, 4), 0.5), np.full((3, 4), 0.75), np.full((3, 4), 0.625)
    interval = bootstrap_interval(cloaked, clean, unseen, n_resamples=200)
    assert interval.ps == pytest.approx(0.5)  # (0.625 − 0.5) / (0.75 − 0.5)
    assert interval.low == pytest.approx(0.5, abs=1e-12) and interval.high == pytest.approx(0.5, abs=1e-12)
    assert interval.text() == "0.50 [0.50, 0.50]"


def test_degenerate_gap_gives_nan_and_n_a():
    same = np.full((3, 4), 0.5)
    interval = bootstrap_interval(same + 0.1, same, same)
    assert math.isnan(interval.ps) and not interval.defined and interval.text() == "n/a"
    # a gap of zero in some resamples (one song learnt, the others not): no interval
    clean = np.zeros((1, 3))
    interval = bootstrap_interval([[0.5, 0.0, 0.0]], clean, [[1.0, 0.0, 0.0]], n_resamples=200)
    assert interval.ps == pytest.approx(0.5) and not interval.defined and interval.text() == "0.50 [n/a]"


def test_missing_cells_are_left_out_of_every_condition():
    clean = np.array([[1.0, 1.0], [1.0, 1.0]])
    unseen = np.array([[2.0, 2.0], [2.0, np.nan]])  # one run lost
    cloaked = np.array([[1.5, 1.5], [1.5, 9.0]])  # its cloaked loss must not count
    assert bootstrap_interval(cloaked, clean, unseen, n_resamples=20).ps == pytest.approx(0.5)


def test_bootstrap_is_deterministic_for_its_seed():
    rng = np.random.default_rng(0)
    clean = rng.normal(1.0, 0.1, (4, 6))
    unseen, cloaked = clean + rng.normal(0.3, 0.1, (4, 6)), clean + rng.normal(0.1, 0.1, (4, 6))
    first = bootstrap_interval(cloaked, clean, unseen, n_resamples=300, seed=5)
    assert first == bootstrap_interval(cloaked, clean, unseen, n_resamples=300, seed=5)
    assert first != bootstrap_interval(cloaked, clean, unseen, n_resamples=300, seed=6)
    with pytest.raises(HarmonyCloakError):
        bootstrap_interval(cloaked, clean, unseen, n_resamples=0)


def _synthetic_population(rng, num_seeds, num_songs, true_ps, mean_gap=0.3):
    """Losses of paired runs whose population PS is ``true_ps`` by construction.

    Per seed: an offset a shared by all three conditions (initialisation luck), a gap shift u and
    a cloaked-only offset w; per song: a difficulty b and a gap shift v; per cell: noise. The
    expected gap is ``mean_gap`` and the expected cloaked − clean ``true_ps · mean_gap``.
    """
    shape = (num_seeds, num_songs)
    a, u, w = (rng.normal(0, sd, (num_seeds, 1)) for sd in (0.3, 0.05, 0.03))
    b, v = (rng.normal(0, sd, (1, num_songs)) for sd in (0.2, 0.05))
    gap = mean_gap + u + v + rng.normal(0, 0.02, shape)
    clean = 1.0 + a + b + rng.normal(0, 0.02, shape)
    unseen = 1.0 + a + b + gap + rng.normal(0, 0.02, shape)
    cloaked = 1.0 + a + b + true_ps * gap + w + rng.normal(0, 0.02, shape)
    return cloaked, clean, unseen


def test_interval_covers_the_true_score_about_95_percent_of_the_time():
    # 300 independent populations of 30 seeds × 15 songs. The percentile bootstrap covers a
    # little less than it claims with few clusters: about 0.935 here (0.92 with 20 seeds, 0.80
    # with 3: the interval of a 3-seed run is optimistic). The binomial sd of the coverage
    # observed in 300 draws is 1.4 %: 0.89 is three of them below 0.935.
    rng = np.random.default_rng(2024)
    hits = 0
    for draw in range(300):
        interval = bootstrap_interval(*_synthetic_population(rng, 30, 15, true_ps=0.4), n_resamples=400, seed=draw)
        hits += interval.low <= 0.4 <= interval.high
    print(f"coverage of the 95 % interval: {hits / 300:.3f}")
    assert 0.89 <= hits / 300 <= 0.99


def test_pairing_cancels_a_shared_per_seed_offset():
    rng = np.random.default_rng(1)
    cloaked, clean, unseen = _synthetic_population(rng, 5, 8, true_ps=0.4)
    offset = np.array([[0.0], [5.0], [-3.0], [10.0], [2.0]])  # a seed's luck, the same in each condition
    np.testing.assert_allclose(protection_scores_paired(cloaked + offset, clean + offset, unseen + offset),
                               protection_scores_paired(cloaked, clean, unseen))
    paired = bootstrap_interval(cloaked + offset, clean + offset, unseen + offset, n_resamples=500)
    reference = bootstrap_interval(cloaked, clean, unseen, n_resamples=500)
    assert paired.low == pytest.approx(reference.low, abs=1e-9)
    assert paired.high == pytest.approx(reference.high, abs=1e-9)
    # Pairing the cloaked run of one seed with the clean run of another lets the offsets into
    # the differences: the per-seed scores change and the interval widens many times.
    shuffled = (cloaked + offset)[[1, 2, 3, 4, 0]]
    assert not np.allclose(protection_scores_paired(shuffled, clean + offset, unseen + offset),
                           protection_scores_paired(cloaked, clean, unseen))
    unpaired = bootstrap_interval(shuffled, clean + offset, unseen + offset, n_resamples=500)
    assert not unpaired.defined or unpaired.high - unpaired.low > 10 * (paired.high - paired.low)


def test_a_method_beats_its_control_only_when_the_intervals_do_not_overlap():
    control = ScoreInterval(0.05, -0.05, 0.15, 3, 10)
    assert beats(control, ScoreInterval(0.4, 0.2, 0.6, 3, 10))
    assert not beats(control, ScoreInterval(0.4, 0.1, 0.7, 3, 10))  # overlaps
    assert not beats(control, ScoreInterval(0.4, 0.15, 0.7, 3, 10))  # touches
    assert not beats(ScoreInterval(0.4, 0.2, 0.6, 3, 10), control)  # below
    assert not beats(control, ScoreInterval(0.4, math.nan, math.nan, 3, 10))  # n/a
    assert not beats(ScoreInterval(math.nan, math.nan, math.nan, 3, 10), ScoreInterval(0.4, 0.2, 0.6, 3, 10))
