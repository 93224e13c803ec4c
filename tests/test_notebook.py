"""ntkbook.notebook: parameter validation and results JSON."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntkbook import notebook as nb


def test_checks_accept_good_values():
    assert nb.check_bool("QUICK", True) is True
    assert nb.check_int("SEED", 3, minimum=0) == 3
    assert nb.check_float("LR", 0.5, minimum=0) == 0.5
    assert nb.check_choice("ACT", "relu", ["relu", "tanh"]) == "relu"
    assert nb.check_int_list("WIDTHS", [4, 8], minimum=2, increasing=True) == [4, 8]
    assert nb.check_path("RESULTS_PATH", None) is None


@pytest.mark.parametrize("call", [
    lambda: nb.check_bool("QUICK", "yes"),
    lambda: nb.check_int("QUICK", True),
    lambda: nb.check_int("SEED", -1, minimum=0),
    lambda: nb.check_float("LR", float("nan")),
    lambda: nb.check_choice("ACT", "gelu", ["relu"]),
    lambda: nb.check_int_list("WIDTHS", [8, 4], increasing=True),
    lambda: nb.check_int_list("WIDTHS", [4], min_length=2),
    lambda: nb.check_int_list("WIDTHS", [4, 10**9], maximum=65536),
    lambda: nb.check_int_list("WIDTHS", list(range(2, 40)), max_length=12),
    lambda: nb.check_path("RESULTS_PATH", 3),
])
def test_checks_name_the_parameter(call):
    with pytest.raises(ValueError, match=r"parameter [A-Z_]+ must be"):
        call()


def test_point_keys_are_fold_in():
    key = jax.random.PRNGKey(0)
    keys = nb.point_keys(key, 3)
    np.testing.assert_array_equal(keys[2], jax.random.fold_in(key, 2))


def test_write_results_converts_arrays(tmp_path):
    path = tmp_path / "sub" / "r.json"
    nb.write_results(str(path), {"a": np.arange(3), "b": {"c": np.float64(1.5)}, "d": [np.int64(2)]})
    assert json.loads(path.read_text()) == {"a": [0, 1, 2], "b": {"c": 1.5}, "d": [2]}
    nb.write_results(None, {"a": 1})  # no-op


def test_glue_converts_numpy_scalars(monkeypatch):
    import jax.numpy as jnp
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.update({name: value}))
    nb.glue("a", np.float64(0.5))
    nb.glue("b", jnp.asarray(3))
    nb.glue("c", "text")
    assert type(seen["a"]) is float and seen["a"] == 0.5
    assert type(seen["b"]) is int and seen["c"] == "text"


def test_claims_are_recorded_and_all_failures_reported():
    claims = [nb.claim("slope", -0.48 < -0.3, -0.48, "slope <= -0.3"),
              nb.claim("a", False, np.float64(2.0), "a < 1"),
              nb.claim("b", np.bool_(False), [1, 2], "b decreasing")]
    assert claims[0] == {"name": "slope", "held": True, "value": -0.48, "statement": "slope <= -0.3"}
    assert json.loads(json.dumps(claims))[1]["value"] == 2.0
    nb.assert_claims(claims[:1])
    with pytest.raises(AssertionError, match=r"2 of 3 claims(.|\n)*a: a < 1(.|\n)*b: b decreasing"):
        nb.assert_claims(claims)


def _namespace(**knobs):
    return {"QUICK": False, "SEED": 0, "RESULTS_PATH": None, **knobs}


KNOBS = {
    "WIDTHS": nb.IntList([64, 128, 256], quick=[64, 128], minimum=2, maximum=4096,
                         min_length=2, increasing=True),
    "NUM_SEEDS": nb.Int(8, minimum=2, maximum=64),
    "LR": nb.Float(0.5, quick=0.25, minimum=1e-6, maximum=10.0),
    "LOSS": nb.Choice("logistic", choices=["logistic", "exponential"]),
    "ALPHAS": nb.FloatList([0.5, 1.0], minimum=0.0),
    "FLAG": nb.Bool(True),
}


def test_resolve_fills_quick_and_full_defaults_and_keeps_given_values():
    full = nb.resolve(_namespace(WIDTHS=None, NUM_SEEDS=None, LR=None, LOSS=None,
                                 ALPHAS=None, FLAG=None), KNOBS)
    assert full == {"QUICK": False, "SEED": 0, "RESULTS_PATH": None,
                    "WIDTHS": [64, 128, 256], "NUM_SEEDS": 8, "LR": 0.5, "LOSS": "logistic",
                    "ALPHAS": [0.5, 1.0], "FLAG": True}
    quick = nb.resolve({**_namespace(WIDTHS=None, NUM_SEEDS=3, LR=None, LOSS="exponential",
                                     ALPHAS=[1, 2], FLAG=False), "QUICK": True}, KNOBS)
    assert quick["WIDTHS"] == [64, 128] and quick["LR"] == 0.25 and quick["NUM_SEEDS"] == 3
    assert quick["LOSS"] == "exponential" and quick["ALPHAS"] == [1.0, 2.0]
    assert quick["FLAG"] is False
    quick["WIDTHS"].append(512)                     # defaults are copied, not shared
    assert KNOBS["WIDTHS"].quick == [64, 128]


@pytest.mark.parametrize("name, value", [
    ("WIDTHS", [128, 64]), ("WIDTHS", [64]), ("NUM_SEEDS", 1), ("NUM_SEEDS", 2.0),
    ("LR", 0.0), ("LR", float("inf")), ("LOSS", "hinge"), ("ALPHAS", [0.5, -1.0]),
    ("ALPHAS", "0.5"), ("FLAG", 1), ("SEED", -1), ("QUICK", "yes"), ("RESULTS_PATH", ""),
])
def test_resolve_names_the_bad_parameter(name, value):
    namespace = _namespace(WIDTHS=None, NUM_SEEDS=None, LR=None, LOSS=None, ALPHAS=None,
                           FLAG=None)
    namespace[name] = value
    with pytest.raises(ValueError, match=f"parameter {name} must be"):
        nb.resolve(namespace, KNOBS)


def test_resolve_reports_a_knob_missing_from_the_parameters_cell():
    with pytest.raises(NameError, match="WIDTHS"):
        nb.resolve(_namespace(), {"WIDTHS": KNOBS["WIDTHS"]})


def test_glue_closes_a_figure_it_does_not_display(monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: None)
    fig, _ = plt.subplots()
    shown, _ = plt.subplots()
    nb.glue("fig", fig, display=False)
    nb.glue("shown", shown, display=True)
    assert not plt.fignum_exists(fig.number) and plt.fignum_exists(shown.number)
    plt.close(shown)


def test_over_seeds_is_a_loop_over_split_keys():
    key = jax.random.PRNGKey(3)
    out = nb.over_seeds(lambda k: {"a": jax.random.normal(k, (2,)), "b": k[0]}, key, 4)
    keys = jax.random.split(key, 4)
    assert out["a"].shape == (4, 2) and isinstance(out["a"], np.ndarray)
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(out["a"][i], jax.random.normal(k, (2,)))


def test_over_seeds_gives_the_same_numbers_on_any_number_of_threads():
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 64))

    def one_seed(k):          # a matmul and a reduction: the kind of program that
        w = jax.random.normal(k, (64, 64))      # could round differently if it did
        return jnp.tanh(x @ w).sum(axis=0)

    key = jax.random.PRNGKey(5)
    serial = nb.over_seeds(one_seed, key, 5, threads=1)
    for threads in (2, 3, 5):
        np.testing.assert_array_equal(nb.over_seeds(one_seed, key, 5, threads=threads), serial)


def test_over_seeds_compiles_once_for_all_seeds():
    traces = []

    def one_seed(k):
        traces.append(1)
        return jax.random.normal(k, (3,))

    nb.over_seeds(one_seed, jax.random.PRNGKey(0), 6, threads=2)
    assert len(traces) == 1


def test_parallel_map_keeps_the_order_and_starts_the_costliest_first():
    import threading

    started, lock = [], threading.Lock()

    def fn(item):
        with lock:
            started.append(item)
        return item * item

    items = [1, 5, 2, 4, 3]
    assert nb.parallel_map(fn, items, threads=1) == [1, 25, 4, 16, 9]
    assert started == items
    started.clear()
    assert nb.parallel_map(fn, items, threads=2, cost=lambda item: item) == [1, 25, 4, 16, 9]
    assert sorted(started) == sorted(items) and 5 in started[:2]   # two threads start at once


def test_parallel_map_raises_the_error_of_an_item():
    def fn(item):
        if item == 2:
            raise ValueError("item 2")
        return item

    with pytest.raises(ValueError, match="item 2"):
        nb.parallel_map(fn, [1, 2, 3], threads=2)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_ntkbook_threads_must_be_a_positive_int(monkeypatch, value):
    monkeypatch.setenv("NTKBOOK_THREADS", value)
    with pytest.raises(ValueError, match="NTKBOOK_THREADS"):
        nb.cpu_threads()


def test_ntkbook_threads_sets_the_threads(monkeypatch):
    monkeypatch.setenv("NTKBOOK_THREADS", "3")
    assert nb.cpu_threads() == 3
    monkeypatch.delenv("NTKBOOK_THREADS")
    assert nb.cpu_threads() >= 1
