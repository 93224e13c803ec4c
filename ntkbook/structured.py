"""Per-example Jacobians of dense layers as outer products ("structured derivatives").

A weight ``W`` that enters a scalar model f(w; x) only through one product
``z = h W`` (a ``dot_general`` without batch dimensions) has the per-example
gradient ``df/dW = H^T D``, with ``H = h(x)`` the other operand, ``(r, a)``, and
``D = df/dz`` its cotangent, ``(r, b)`` (``r`` = the free axes of ``h``, 1 for a
dense layer on one input). Its share of the tangent kernel is then

    K_W(x, x') = <H^T D, H'^T D'> = sum_{s,t} (H H'^T)[s, t] (D D'^T)[s, t],

an ``(a + b) r^2`` contraction instead of an ``a b`` one; for ``r = 1`` it is
``<h, h'> <delta, delta'>``. h and delta of every example come from one
forward and one backward pass (the backward pass stops at the activations: no
``a x b`` weight gradient is ever formed). This is the "structured
derivatives" rule of Novak, Sohl-Dickstein, Schoenholz 2022 ("Fast Finite
Width Neural Tangent Kernel", arXiv 2206.08720, Sec. 3.3 and Table 2) for
the one primitive that carries almost all parameters of the networks in
this book; every other parameter is left to the caller.

``factorise`` reads the program of ``apply_fn`` (its jaxpr) once per trace and
finds such weights; ``per_example_factors`` evaluates that program with a tap
(a zero added to each such ``z``) and returns the ``H``, ``D`` and the plain
gradients of the other parameters. Nothing is cached between calls.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import Literal

__all__ = ["Plan", "factorise", "per_example_factors", "rest_output"]


class Plan(NamedTuple):
    """Which parameters are dense-layer weights, read from one jaxpr.

    Attributes:
      closed: ``ClosedJaxpr`` of ``(leaves, x) -> apply_fn(params, x[None])``.
      taps: ``{eqn index: (leaf index, side of the leaf in dot_general)}``.
      rest: leaf indices differentiated plainly (not tapped, not dead).
    """

    closed: object
    taps: dict
    rest: tuple


def _dot_layout(eqn, side):
    """Axes of the non-parameter operand: (free axes, contracted axes), and ``r``, ``a``."""
    (lhs_c, rhs_c), _ = eqn.params["dimension_numbers"]
    other = eqn.invars[1 - side].aval
    contract = tuple(lhs_c if side == 1 else rhs_c)
    free = tuple(i for i in range(other.ndim) if i not in contract)
    r = int(np.prod([other.shape[i] for i in free], dtype=np.int64))
    a = int(np.prod([other.shape[i] for i in contract], dtype=np.int64))
    return free, contract, r, a


def factorise(apply_fn, leaves, treedef, x_row) -> Plan:
    """Trace ``apply_fn`` on one input and classify the parameter leaves.

    A leaf is tapped when its only use is one operand of a top-level
    ``dot_general`` without batch axes, and the factored contraction is
    cheaper (``r^2 (a + b) <= a b``); it is dead when it is only used under
    ``stop_gradient`` (zero Jacobian); every other leaf is "rest".

    Args:
      apply_fn: ``apply_fn(params, x: (n, d)) -> (n, 1)``.
      leaves, treedef: the flattened parameters (arrays, tracers or
        ``jax.ShapeDtypeStruct``).
      x_row: one input, ``(d,)``.
    """
    spec = [jax.ShapeDtypeStruct(jnp.shape(l), jnp.result_type(l)) for l in leaves]
    row = jax.ShapeDtypeStruct(jnp.shape(x_row), jnp.result_type(x_row))

    def one(leaf_list, x):
        return apply_fn(jax.tree.unflatten(treedef, leaf_list), x[None])

    closed = jax.make_jaxpr(one)(spec, row)
    jaxpr = closed.jaxpr
    leaf_vars = {v: i for i, v in enumerate(jaxpr.invars[: len(leaves)])}
    uses = {i: [] for i in range(len(leaves))}
    for k, eqn in enumerate(jaxpr.eqns):
        for side, v in enumerate(eqn.invars):
            if not isinstance(v, Literal) and v in leaf_vars:
                uses[leaf_vars[v]].append((k, side))
    for v in jaxpr.outvars:
        if not isinstance(v, Literal) and v in leaf_vars:
            uses[leaf_vars[v]].append((None, 0))
    taps, rest = {}, []
    for i, used in uses.items():
        prims = [None if k is None else jaxpr.eqns[k].primitive.name for k, _ in used]
        if all(p == "stop_gradient" for p in prims):
            continue                                   # zero Jacobian (or unused)
        if len(used) == 1 and prims[0] == "dot_general":
            k, side = used[0]
            eqn = jaxpr.eqns[k]
            (_, _), (lhs_b, rhs_b) = eqn.params["dimension_numbers"]
            if not lhs_b and not rhs_b and eqn.invars[0] is not eqn.invars[1]:
                _, _, r, a = _dot_layout(eqn, side)
                b = int(np.prod(eqn.invars[side].aval.shape, dtype=np.int64)) // max(a, 1)
                if r == 1 or r * r * (a + b) <= a * b:
                    taps[k] = (i, side)
                    continue
        rest.append(i)
    return Plan(closed, taps, tuple(rest))


def _cotangent_of_input(eqn, side, w, g):
    """``d<g, dot(h, W)>/dh`` with the weight ``W`` as the left operand of the product.

    jax's transpose rule writes it as ``g W^T`` (W contracted on its minor
    axis from the right), which XLA's CPU backend runs 5-100x slower than
    ``W g^T`` for few rows (float32, m = 1024-4096: a per-call cost of
    O(m^2) that dominated small kernels); the barrier keeps XLA from folding
    the final small transpose back into the product.
    """
    (lhs_c, rhs_c), _ = eqn.params["dimension_numbers"]
    w_contract = tuple(rhs_c if side == 1 else lhs_c)
    h_contract = tuple(lhs_c if side == 1 else rhs_c)
    h_ndim = eqn.invars[1 - side].aval.ndim
    w_free = tuple(i for i in range(w.ndim) if i not in w_contract)
    h_free = tuple(i for i in range(h_ndim) if i not in h_contract)
    g_w = tuple(range(len(h_free), g.ndim)) if side == 1 else tuple(range(len(w_free)))
    res = jax.lax.dot_general(w, g, ((w_free, g_w), ((), ())),
                              preferred_element_type=g.dtype)
    res = jax.lax.optimization_barrier(res)   # axes: sorted(w_contract), then h_free
    perm = [0] * h_ndim
    for axis, w_axis in enumerate(sorted(w_contract)):
        perm[h_contract[w_contract.index(w_axis)]] = axis
    for j, h_axis in enumerate(h_free):
        perm[h_axis] = len(w_contract) + j
    return jnp.transpose(res, perm).astype(eqn.invars[1 - side].aval.dtype)


def _tapped_dot(eqn, side, w):
    """``h -> dot_general(h, W)`` (W fixed) with ``_cotangent_of_input`` as its VJP."""

    @jax.custom_vjp
    def dot(h):
        args = (h, w) if side == 1 else (w, h)
        subfuns, params = eqn.primitive.get_bind_params(eqn.params)
        return eqn.primitive.bind(*subfuns, *args, **params)

    dot.defvjp(lambda h: (dot(h), None),
               lambda _, g: (_cotangent_of_input(eqn, side, w, g),))
    return dot


def _run(plan: Plan, leaves, x, eps, *, reverse: bool = False):
    """Evaluate the jaxpr on one input, adding ``eps[k]`` to tapped outputs.

    ``reverse=True`` (for reverse-mode derivatives only) computes the tapped
    products with ``_tapped_dot``; the values are the same.

    Returns ``(f, hs)``: the scalar output and ``{k: H_k (r, a)}``.
    """
    jaxpr = plan.closed.jaxpr
    env = {}

    def read(v):
        return v.val if isinstance(v, Literal) else env[v]

    for v, c in zip(jaxpr.constvars, plan.closed.consts):
        env[v] = c
    for v, val in zip(jaxpr.invars, list(leaves) + [x]):
        env[v] = val
    hs = {}
    for k, eqn in enumerate(jaxpr.eqns):
        if reverse and k in plan.taps:
            side = plan.taps[k][1]
            out = _tapped_dot(eqn, side, read(eqn.invars[side]))(read(eqn.invars[1 - side]))
        else:
            subfuns, params = eqn.primitive.get_bind_params(eqn.params)
            out = eqn.primitive.bind(*subfuns, *map(read, eqn.invars), **params)
        if k in plan.taps:
            side = plan.taps[k][1]
            free, contract, r, a = _dot_layout(eqn, side)
            h = jnp.transpose(read(eqn.invars[1 - side]), free + contract)
            hs[k] = h.reshape(r, a)
            out = out + eps[k]
        if eqn.primitive.multiple_results:
            for v, o in zip(eqn.outvars, out):
                env[v] = o
        else:
            env[eqn.outvars[0]] = out
    return read(jaxpr.outvars[0])[0, 0], hs


def per_example_factors(plan: Plan, leaves, x, *, with_rest: bool = True):
    """``H``, ``D`` of every tapped weight and gradients of the rest, per example.

    Args:
      plan: from ``factorise``.
      leaves: the flattened parameters.
      x: ``(n, d)`` inputs.
      with_rest: also return the per-example gradients of the rest leaves
        (``n x`` their size in memory); False returns an empty list.

    Returns:
      ``(hs, ds, grads)``: ``{k: (n, r, a)}``, ``{k: (n, r, b)}`` and the list
      ``[(n,) + leaf.shape for leaf in plan.rest]``; one vmapped forward and
      backward pass.
    """
    jaxpr = plan.closed.jaxpr
    zeros = {k: jnp.zeros(jaxpr.eqns[k].outvars[0].aval.shape,
                          jaxpr.eqns[k].outvars[0].aval.dtype) for k in plan.taps}
    fixed = list(leaves)
    rest_idx = plan.rest if with_rest else ()

    def one(eps, rest, xi):
        full = list(fixed)
        for i, leaf in zip(rest_idx, rest):
            full[i] = leaf
        return _run(plan, full, xi, eps, reverse=True)

    def per_example(xi):
        (eps_grad, rest_grad), hs = jax.grad(one, argnums=(0, 1), has_aux=True)(
            zeros, [fixed[i] for i in rest_idx], xi)
        ds = {}
        for k, (_, side) in plan.taps.items():
            r = hs[k].shape[0]
            d = eps_grad[k]
            ds[k] = d.reshape(r, -1) if side == 1 else d.reshape(-1, r).T
        return hs, ds, rest_grad

    return jax.vmap(per_example)(x)


def rest_output(plan: Plan, leaves):
    """``(rest_leaves, x_row) -> f`` with the tapped weights held at ``leaves``."""
    zeros = {k: jnp.zeros(plan.closed.jaxpr.eqns[k].outvars[0].aval.shape,
                          plan.closed.jaxpr.eqns[k].outvars[0].aval.dtype) for k in plan.taps}

    def fn(rest, xi):
        full = list(leaves)
        for i, leaf in zip(plan.rest, rest):
            full[i] = leaf
        return _run(plan, full, xi, zeros)[0]

    return fn
