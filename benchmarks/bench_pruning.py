"""Benchmark: compilation vs training time of chapter 5's training rounds (not a test).

Chapter 5 trains every run of its sweep as one *round* of ``num_steps``
minibatch steps: ``nk.train`` on ``nk.minibatch.objective`` with
``nk.gates.gated_optimizer`` (Adam on the weights, the proximal prior on the
gates), ``jax.vmap``-ed over runs (seeds x prior strengths) inside one
``jax.jit``. This script builds that round for the chapter's gated CNN and
residual CNN on MNIST-1D (float32, minibatch 64) and measures, in CPU
seconds (``time.process_time``, both cores counted) and wall seconds:

* the first call (trace + compile + run) and a warm call with new data and
  prior strengths (must not recompile);
* the steady-state cost per run-step.

Usage::

    python benchmarks/bench_pruning.py [--runs 8 32] [--steps 300] [--channels 16] [--depth 3]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import ntkbook as nk  # noqa: E402
import ntkbook.convnets  # noqa: E402,F401
import ntkbook.gates  # noqa: E402,F401
import ntkbook.minibatch  # noqa: E402,F401


def training_round(model, num_steps: int, batch_size: int = 64):
    """The chapter's round: jit(vmap(one run)) over (params, lam, key), data shared."""
    def loss_fn(params, xb, yb):
        return nk.gates.cross_entropy(model.apply_fn(params, xb), yb)

    def one_run(params, lam, key, x, y):
        fn = nk.minibatch.objective(loss_fn, x, y, key=key, batch_size=batch_size)
        opt = nk.minibatch.count_steps(nk.gates.gated_optimizer(1e-2, gate_lr=0.1, lam=lam))
        return nk.train(fn, nk.minibatch.start(params), opt, num_steps=num_steps).params["params"]

    return jax.jit(jax.vmap(one_run, in_axes=(0, 0, 0, None, None)))


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    jax.block_until_ready(fn())
    return time.process_time() - cpu, time.perf_counter() - wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    data = [nk.data.mnist1d("standard", seed=s, num_samples=2000) for s in (0, 1)]
    for name, factory in [("CNN", nk.convnets.gated_cnn), ("ResCNN", nk.convnets.gated_rescnn)]:
        model = factory(40, args.channels, args.depth, 10)
        for runs in args.runs:
            run_round = training_round(model, args.steps)
            keys = jax.random.split(jax.random.PRNGKey(0), runs)
            params = jax.tree.map(lambda a: a.astype(jnp.float32), jax.vmap(model.init_fn)(keys))
            lams = [jnp.linspace(0.0, 0.2, runs, dtype=jnp.float32), jnp.full(runs, 0.1, jnp.float32)]
            first = timed(lambda: run_round(params, lams[0], keys, data[0][0], data[0][1]))
            warm = timed(lambda: run_round(params, lams[1], keys, data[1][0], data[1][1]))
            per = warm[0] / (runs * args.steps) * 1e3
            print(f"{name:6s} runs={runs:3d} steps={args.steps}: first call {first[0]:6.1f} s CPU "
                  f"({first[1]:5.1f} s wall), warm {warm[0]:6.1f} s CPU ({warm[1]:5.1f} s wall), "
                  f"compile ~{first[0] - warm[0]:5.1f} s CPU, {per:.3f} ms CPU per run-step")


if __name__ == "__main__":
    main()
