"""Benchmark: gradient vs Hessian-vector product vs ``spectral_norm`` (not a test).

Times, at a few widths of a tanh MLP (NTK parameterisation, float64, one
input), one gradient ``grad_w f(w; x)``, one forward-over-reverse
Hessian-vector product ``ntkbook.hessian.hvp`` (Pearlmutter 1994) and one
``ntkbook.hessian.spectral_norm`` call (Lanczos), all compiled and warm, and
prints the HVP / gradient cost ratio. Theory: an HVP costs a small constant
times a gradient whatever the width (1-4; for one input both are memory-bound
by the P-vector they write); Lanczos with k steps costs about k HVPs plus
O(k P) vector work.

Usage::

    python benchmarks/bench_hessian.py [--depth 2] [--widths 256 512 1024 2048]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import ntkbook as nk  # noqa: E402


def best_time(fn, *args, repeats: int) -> float:
    """Smallest wall time of ``repeats`` warm calls (compilation excluded)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def bench_width(width: int, depth: int, d: int, num_iters: int, repeats: int) -> dict:
    model = nk.mlp(d, width, depth, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (d,))
    fn = nk.linearity.output_fn(model.apply_fn, x * jnp.sqrt(d) / jnp.linalg.norm(x))
    v = jax.tree.map(jnp.ones_like, params)
    grad = jax.jit(jax.grad(fn))
    hvp = jax.jit(lambda p, v: nk.hvp(fn, p, v))
    key = jax.random.PRNGKey(2)
    t_grad = best_time(grad, params, repeats=repeats)
    t_hvp = best_time(hvp, params, v, repeats=repeats)
    nk.spectral_norm(fn, params, key=key, num_iters=num_iters)           # compile
    start = time.perf_counter()
    nk.spectral_norm(fn, params, key=key, num_iters=num_iters)
    t_lanczos = time.perf_counter() - start
    num_params = sum(a.size for a in jax.tree.leaves(params))
    return dict(width=width, params=num_params, grad=t_grad, hvp=t_hvp, lanczos=t_lanczos,
                ratio=t_hvp / t_grad, per_iter=t_lanczos / num_iters / t_grad)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--in-dim", type=int, default=64)
    parser.add_argument("--num-iters", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    nk.enable_float64()
    print(f"tanh MLP, depth {args.depth}, d = {args.in_dim}, float64, "
          f"{jax.device_count()} {jax.default_backend()} device(s); "
          f"spectral_norm with {args.num_iters} Lanczos steps")
    header = (f"{'width':>6} {'params':>10} {'grad [ms]':>10} {'HVP [ms]':>10} "
              f"{'HVP/grad':>9} {'lanczos [s]':>12} {'per step/grad':>14}")
    print(header)
    print("-" * len(header))
    rows = []
    for width in args.widths:
        r = bench_width(width, args.depth, args.in_dim, args.num_iters, args.repeats)
        rows.append(r)
        print(f"{r['width']:>6} {r['params']:>10,} {1e3 * r['grad']:>10.2f} "
              f"{1e3 * r['hvp']:>10.2f} {r['ratio']:>9.2f} {r['lanczos']:>12.3f} "
              f"{r['per_iter']:>14.2f}", flush=True)
    print(f"median HVP/grad ratio: {np.median([r['ratio'] for r in rows]):.2f} "
          "(forward-over-reverse: a small constant; for one input both are memory-bound "
          "by the P-vector they write, so it can be close to 1)")


if __name__ == "__main__":
    main()
