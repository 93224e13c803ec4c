"""Benchmark: one compiled program over seeds, ``jax.vmap`` vs ``jax.lax.map`` (not a test).

A chapter runs each (architecture, width) once per seed. Both ways compile
one program per shape; this measures which compiles and runs faster on this
machine: the Hessian and gradient norms at initialisation of chapter 2
(``nk.linearity.init_norms``: init, Lanczos with 30 HVPs, one gradient, in
float64) for ``--seeds`` seeds, on tanh MLPs and the two-block ResNet. The
times are CPU seconds of this process (``time.process_time``), compilation
(``.lower().compile()``) and one run separately, so other load on the
machine disturbs them less than wall time.

Measured here (2 cores, loaded, 8 seeds): compile 3.4 / 5.9 / 8.4 s with
vmap against 2.0 / 4.2 / 6.0 s with lax.map for MLP depth 1 width 1024 /
depth 3 width 512 / ResNet width 512; runs within 10% of each other. Hence
``nk.notebook.over_seeds`` compiled one program per shape, not a batched one;
since 2026-12-04 it compiles one seed's program (what the ``lax.map`` body
costs) and runs the seeds in threads, because XLA runs these programs on one
core (1.5x in wall time on 2 cores for width-1024 GD; wall time, which this
script does not measure).

Usage::

    python benchmarks/bench_seeds.py [--seeds 8]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402

import ntkbook as nk  # noqa: E402


def _measure(fn, keys):
    start = time.process_time()
    compiled = jax.jit(fn).lower(keys).compile()
    compiled_at = time.process_time()
    jax.block_until_ready(compiled(keys))
    return compiled_at - start, time.process_time() - compiled_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    nk.enable_float64()
    x = jax.random.normal(jax.random.PRNGKey(0), (64,))
    keys = jax.random.split(jax.random.PRNGKey(1), args.seeds)
    models = {"MLP depth 1, width 1024": nk.mlp(64, 1024, 1, activation="tanh"),
              "MLP depth 3, width 512": nk.mlp(64, 512, 3, activation="tanh"),
              "ResNet 2 blocks, width 512": nk.resnet(64, 512, 2, alpha=2**-0.5)}
    print(f"{'model':28s} {'vmap compile':>12s} {'run':>6s} {'lax.map compile':>16s} {'run':>6s}")
    for name, model in models.items():
        def one(k, model=model):
            return nk.linearity.init_norms(model, x, k)
        vmap = _measure(jax.vmap(one), keys)
        loop = _measure(lambda ks: jax.lax.map(one, ks), keys)
        print(f"{name:28s} {vmap[0]:12.2f} {vmap[1]:6.2f} {loop[0]:16.2f} {loop[1]:6.2f}")


if __name__ == "__main__":
    main()
