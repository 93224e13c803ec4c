"""Benchmark: compilation vs training time of chapter 5's gated training (not a test).

``ntkbook.pruning.train_gated`` runs B vmapped trainings as a ``lax.scan``
over chunks of ``_CHUNK`` steps whose step offset, length and prior phase are
traced, so one compilation per (model, batch size) serves every run length.
This script measures, for the chapter's MLP and ResMLP (2 -> 4 x 32 -> 3,
float32, 500 spiral points, minibatch 128):

* the first call (trace + compile + run) and a warm call of the same length;
* a warm call of a *different* length (must not recompile: about
  ``new_len / len`` times the warm time);
* the steady-state cost per training step of B runs, and per run-step.

Usage::

    python benchmarks/bench_pruning.py [--batch 2 10] [--steps 1000]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import ntkbook as nk  # noqa: E402
from ntkbook.notebook import point_keys  # noqa: E402


def timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def bench(model, batch: int, steps: int, x, labels) -> dict:
    params = nk.pruning.init_batch(model, point_keys(jax.random.PRNGKey(0), batch), dtype=jnp.float32)
    keys = point_keys(jax.random.PRNGKey(1), batch)
    lams = jnp.full(batch, 0.02, jnp.float32)

    def run(num_steps):
        return lambda: nk.pruning.train_gated(model.apply_fn, params, x, labels, keys=keys,
                                              lams=lams, num_steps=num_steps)[0]

    first = timed(run(steps))
    warm = min(timed(run(steps)) for _ in range(2))
    other = timed(run(2 * steps))
    return dict(first=first, warm=warm, compile=first - warm, double=other,
                per_step_ms=1e3 * warm / steps, per_run_step_us=1e6 * warm / steps / batch)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[2, 10])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args(argv)
    x, labels = nk.data.spiral(500, 3, key=jax.random.PRNGKey(2), noise=0.02)
    x = jnp.asarray(x, jnp.float32)
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} cores, "
          f"{args.steps} steps")
    print(f"{'model':7s} {'B':>3s} {'first s':>8s} {'warm s':>7s} {'compile s':>9s} "
          f"{'2x steps s':>10s} {'ms/step':>8s} {'us/run-step':>11s}")
    for name, model in [("MLP", nk.pruning.gated_mlp(2, 32, 4, 3)),
                        ("ResMLP", nk.pruning.gated_resmlp(2, 32, 4, 3))]:
        for batch in args.batch:
            r = bench(model, batch, args.steps, x, labels)
            print(f"{name:7s} {batch:3d} {r['first']:8.2f} {r['warm']:7.2f} {r['compile']:9.2f} "
                  f"{r['double']:10.2f} {r['per_step_ms']:8.3f} {r['per_run_step_us']:11.1f}")


if __name__ == "__main__":
    main()
