"""Benchmark: empirical NTK vs neural-tangents, and gradient / HVP / Lanczos step (not a test).

Table 1 (kernel). ``ntkbook.empirical_ntk`` against neural-tangents 0.6.5's
``empirical_ntk_fn`` implementations 1 (Jacobian contraction) and 2
(NTK-vector products), each with ``vmap_axes=0`` and ``None``, on a
2-hidden-layer ReLU MLP from ``nk.mlp`` (NTK parameterisation, biases,
d = 8), for each width, number of inputs n (``K(x, x)``, n x n) and dtype.
Every callable is jitted and warmed up first (compilation excluded); then the
methods run in interleaved rounds (ours, nt 1/0, nt 1/None, nt 2/0, ...) so
that load from other processes hits all of them alike, and the table shows
the median of the rounds. ``ratio`` = ours / the fastest neural-tangents
variant (<= 1: ours is at least as fast). ``mem`` is XLA's temporary buffer
size of the compiled program (``memory_analysis().temp_size_in_bytes``:
the peak scratch memory besides inputs and outputs). neural-tangents
variants whose stored Jacobians (n x #params) would exceed ``--max-jac-gb``,
or whose estimated time exceeds ``--max-nt-seconds``, are skipped and marked.

Table 2 (Hessian). At widths of a tanh MLP (float64, d = 64, one input), one
gradient, one Hessian-vector product ``nk.hvp`` (forward over reverse) and one
``nk.spectral_norm`` call with k Lanczos steps, interleaved likewise; the
Lanczos cost is shown per step, ``total / k`` (all overhead included) and
marginal ``(T(2k) - T(k)) / k``, in units of one HVP and of one gradient;
these sub-millisecond to ~100 ms calls use the best of the interleaved
rounds (the least disturbed one), the kernel table their median.

Usage::

    python benchmarks/bench_speed.py                    # both tables (~20 min on 2 busy cores;
                                                        # most of it is neural-tangents at m = 4096)
    python benchmarks/bench_speed.py --only kernel --widths 256 1024 --inputs 32
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


def timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def interleaved(fns: dict, rounds: int, stat=np.median) -> dict:
    """``stat`` (median, or min = best-of-N) of each callable's wall time over interleaved rounds."""
    for fn in fns.values():
        jax.block_until_ready(fn())                    # compile + warm
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: float(stat(t)) for name, t in times.items()}


def temp_bytes(jitted, *args) -> float:
    """XLA temporary buffer size of ``jitted`` compiled for ``args`` (bytes)."""
    return jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes


def _nt():
    nk.infinite._stax()                                     # quiet TensorFlow import
    import neural_tangents as nt
    return nt


def kernel_row(width, n, dtype, rounds, max_jac_gb, max_nt_seconds):
    nt = _nt()
    model = nk.mlp(8, width, 2, activation="relu", w_std=2**0.5, b_std=0.1)
    params = jax.tree.map(lambda a: a.astype(dtype), model.init_fn(jax.random.PRNGKey(0)))
    x = nk.data.sphere(n, 8, key=jax.random.PRNGKey(1)).astype(dtype)
    num_params = sum(a.size for a in jax.tree.leaves(params))
    itemsize = np.dtype(dtype).itemsize
    ours = lambda: nk.empirical_ntk(model.apply_fn, params, x)
    fns, mem, skipped = {"ours": ours}, {}, {}
    mem["ours"] = temp_bytes(nk.ntk._ntk, model.apply_fn, params, x, None)
    for impl in (1, 2):
        for vmap_axes in (0, None):
            name = f"nt{impl}/{vmap_axes}"
            if impl == 1 and n * num_params * itemsize > max_jac_gb * 2**30:
                skipped[name] = f"J {n * num_params * itemsize / 2**30:.0f} GB"
                continue
            # NTK-vector products cost ~ n^2 #params multiply-adds at ~1e10/s here
            if 3 * n * n * num_params / 1e10 > max_nt_seconds:
                skipped[name] = "too slow"
                continue
            fn = jax.jit(nt.empirical_ntk_fn(
                model.apply_fn, trace_axes=(), vmap_axes=vmap_axes,
                implementation=impl))
            mem[name] = temp_bytes(fn, x, None, params)
            fns[name] = lambda fn=fn: fn(x, None, params)
    got = np.asarray(ours())
    diffs = [np.abs(np.asarray(f())[:, :, 0, 0] - got).max() / np.abs(got).max()
             for name, f in fns.items() if name != "ours"]
    agree = float(max(diffs)) if diffs else float("nan")
    times = interleaved(fns, rounds)
    return dict(width=width, n=n, dtype=np.dtype(dtype).name, params=num_params,
                times=times, mem=mem, skipped=skipped, agree=agree)


def kernel_table(args) -> list:
    print(f"\nTable 1: empirical NTK K(x, x) of nk.mlp(8, m, 2, relu, biases), "
          f"{jax.device_count()} {jax.default_backend()} device(s), median of "
          f"{args.rounds} interleaved rounds; ms (and temp memory, MB)")
    header = (f"{'dtype':>7} {'width':>5} {'n':>4} {'#params':>10} {'ours':>14} "
              f"{'nt impl1/v0':>15} {'nt impl1/None':>15} {'nt impl2/v0':>15} "
              f"{'nt impl2/None':>15} {'ratio':>6} {'max rel diff':>12}")
    print(header)
    print("-" * len(header))
    rows = []
    for dtype in args.dtypes:
        for width in args.widths:
            for n in args.inputs:
                r = kernel_row(width, n, {"float32": jnp.float32, "float64": jnp.float64}[dtype],
                               args.rounds, args.max_jac_gb, args.max_nt_seconds)
                rows.append(r)

                def cell(name):
                    if name in r["skipped"]:
                        return f"{'(' + r['skipped'][name] + ')':>15}"
                    return (f"{1e3 * r['times'][name]:>8.2f}"
                            f" ({r['mem'][name] / 2**20:>4.0f})")

                nt_times = [t for k, t in r["times"].items() if k != "ours"]
                ratio = r["times"]["ours"] / min(nt_times) if nt_times else float("nan")
                print(f"{r['dtype']:>7} {width:>5} {n:>4} {r['params']:>10,} "
                      f"{1e3 * r['times']['ours']:>7.2f} ({r['mem']['ours'] / 2**20:>4.0f})"
                      f" {cell('nt1/0')} {cell('nt1/None')} {cell('nt2/0')} {cell('nt2/None')}"
                      f" {ratio:>6.3f} {r['agree']:>12.1e}", flush=True)
    return rows


def hessian_row(width, depth, d, num_iters, rounds):
    model = nk.mlp(d, width, depth, activation="tanh")
    params = model.init_fn(jax.random.PRNGKey(0))
    x = jax.random.normal(jax.random.PRNGKey(1), (d,))
    fn = nk.hessian.output_fn(model.apply_fn, x * jnp.sqrt(d) / jnp.linalg.norm(x))
    v = jax.tree.map(jnp.ones_like, params)
    grad = jax.jit(jax.grad(fn))
    hvp = jax.jit(lambda p, v: nk.hvp(fn, p, v))
    key = jax.random.PRNGKey(2)
    times = interleaved({
        "grad": lambda: grad(params),
        "hvp": lambda: hvp(params, v),
        "lanczos": lambda: nk.spectral_norm(fn, params, key=key, num_iters=num_iters),
        "lanczos2": lambda: nk.spectral_norm(fn, params, key=key, num_iters=2 * num_iters),
    }, rounds, stat=np.min)
    num_params = sum(a.size for a in jax.tree.leaves(params))
    step = times["lanczos"] / num_iters
    marginal = (times["lanczos2"] - times["lanczos"]) / num_iters
    return dict(width=width, params=num_params, **times, step=step, marginal=marginal)


def hessian_table(args) -> list:
    nk.enable_float64()
    k = args.num_iters
    print(f"\nTable 2: tanh MLP depth {args.depth}, d = 64, one input, float64; "
          f"spectral_norm with k = {k} and {2 * k} Lanczos steps; best of "
          f"{args.rounds} interleaved rounds")
    header = (f"{'width':>6} {'params':>10} {'grad ms':>8} {'HVP ms':>8} {'HVP/grad':>8} "
              f"{'step ms':>8} {'step/HVP':>8} {'step/grad':>9} {'marg/HVP':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    for width in args.hessian_widths:
        r = hessian_row(width, args.depth, 64, k, args.rounds)
        rows.append(r)
        print(f"{width:>6} {r['params']:>10,} {1e3 * r['grad']:>8.2f} {1e3 * r['hvp']:>8.2f} "
              f"{r['hvp'] / r['grad']:>8.2f} {1e3 * r['step']:>8.2f} "
              f"{r['step'] / r['hvp']:>8.2f} {r['step'] / r['grad']:>9.2f} "
              f"{r['marginal'] / r['hvp']:>8.2f}", flush=True)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["kernel", "hessian"])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--inputs", type=int, nargs="+", default=[8, 32, 256])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-jac-gb", type=float, default=4.0)
    parser.add_argument("--max-nt-seconds", type=float, default=10.0)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--hessian-widths", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--num-iters", type=int, default=30)
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, {os.cpu_count()} cores (shared: medians of interleaved "
          "rounds keep the ratios meaningful under load)")
    if "float64" in args.dtypes or args.only != "kernel":
        nk.enable_float64()                            # float32 arrays stay float32
    if args.only in (None, "kernel"):
        kernel_table(args)
    if args.only in (None, "hessian"):
        hessian_table(args)


if __name__ == "__main__":
    main()
