"""ntkbook.sweep: seed lists and the per-claim table (no notebook is run here)."""
import pytest

from ntkbook import sweep


def test_parse_seeds():
    assert sweep.parse_seeds("100-103") == [100, 101, 102, 103]
    assert sweep.parse_seeds("0-2,10,1") == [0, 1, 2, 10]
    for bad in ("a", "5-3", "-1", "1-", ""):
        with pytest.raises(ValueError, match="--seeds"):
            sweep.parse_seeds(bad)


def _record(seed, held, value, ok=True):
    claims = [{"name": "slope", "held": held, "value": value, "statement": "slope <= -0.3"}]
    return {"seed": seed, "seconds": 10.0 + seed, "ok": ok, "claims": claims, "error": ""}


def test_summarize_counts_and_names_failing_seeds():
    records = [_record(1, True, -0.5), _record(2, False, -0.2, ok=False), _record(3, True, -0.4)]
    (row,) = sweep.summarize(records)
    assert (row["held"], row["runs"], row["failed_seeds"]) == (2, 3, [2])
    table = sweep.format_table("02_x", records + [
        {"seed": 4, "seconds": 1.0, "ok": False, "claims": None, "error": "ValueError: boom"}])
    assert "| slope | 2/4 (fails: 2) | -0.5 | -0.4 | -0.2 |" in table
    assert "runs passed: 2/4" in table and "seed 4 stopped before its claim check" in table


def test_list_values_are_summarised_per_component():
    records = [_record(1, True, [1.0, 10.0]), _record(2, True, [3.0, 30.0]),
               _record(3, True, [2.0, 20.0])]
    assert "| slope | 3/3 | 1; 10 | 2; 20 | 3; 30 |" in sweep.format_table("06_x", records)


def test_spread_of_dict_values_is_per_key():
    from ntkbook.sweep import _spread

    values = [{"linear": 0.1, "sigmoid": -0.2}, {"linear": 0.3, "sigmoid": 0.0},
              {"linear": 0.2, "sigmoid": -0.1}]
    assert _spread(values) == ("linear 0.1; sigmoid -0.2", "linear 0.2; sigmoid -0.1",
                               "linear 0.3; sigmoid 0")
