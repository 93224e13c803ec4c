"""ntkbook.stats: slopes over seeds against exact power laws and a Monte-Carlo check."""
import numpy as np
import pytest

from ntkbook import stats

TOL_EXACT = 1e-12   # float64 least squares on exact powers


def test_exact_power_law_over_seeds():
    widths = np.array([8, 16, 32, 64])
    values = np.stack([2.0 * widths**-0.5, 3.0 * widths**-0.5])
    slope = stats.fit_slope(widths, values)
    assert abs(slope.exponent + 0.5) < TOL_EXACT and slope.spread < TOL_EXACT
    assert slope.stderr < TOL_EXACT and len(slope.per_seed) == 2


def test_exponent_is_mean_of_per_seed_slopes_and_fit_of_geometric_mean():
    widths = np.array([4.0, 8, 16, 32, 64])
    values = np.exp(np.random.default_rng(0).normal(size=(5, 5))) * widths**-1.0
    slope = stats.fit_slope(widths, values)
    geo = np.polyfit(np.log(widths), np.log(values).mean(0), 1)[0]
    assert abs(slope.exponent - geo) < TOL_EXACT
    assert abs(slope.exponent - np.mean(slope.per_seed)) < TOL_EXACT
    assert abs(slope.stderr - np.std(slope.per_seed, ddof=1) / np.sqrt(5)) < TOL_EXACT


def test_stderr_matches_monte_carlo():
    """Over many experiments the exponent scatters by its standard error."""
    rng = np.random.default_rng(1)
    widths = np.array([64.0, 128, 256, 512])
    fits = [stats.fit_slope(widths, np.exp(0.3 * rng.normal(size=(8, 4))) * widths**-0.5)
            for _ in range(2000)]
    exps = np.array([f.exponent for f in fits])
    # sd of the slope: 0.3 / sqrt(8 * sum (log x - mean)^2); 2000 draws: ~3% accuracy
    expected = 0.3 / np.sqrt(8 * np.sum((np.log(widths) - np.log(widths).mean()) ** 2))
    assert abs(exps.std() / expected - 1) < 0.1
    assert abs(np.median([f.stderr for f in fits]) / expected - 1) < 0.1
    assert abs(exps.mean() + 0.5) < 0.01


@pytest.mark.parametrize("widths, values", [
    ([8, 16], [[1.0, 2.0, 3.0]]), ([8], [[1.0]]), ([8, 16], [[1.0, -1.0]]),
    ([0, 16], [[1.0, 1.0]]), ([8, 16], [[1.0, np.nan]])])
def test_bad_input(widths, values):
    with pytest.raises(ValueError):
        stats.fit_slope(widths, values)


def test_one_seed_has_no_stderr():
    slope = stats.fit_slope([8, 16, 32], [1.0, 0.5, 0.25])
    assert abs(slope.exponent + 1) < TOL_EXACT and np.isnan(slope.stderr) and slope.spread == 0.0
