"""Tests for ntkbook.pl_condition: the PL* inequality against its equality case (float64)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntkbook as nk
from ntkbook import pl_condition


def test_pl_constant_inequality_and_equality():
    """||grad L||^2 >= 2 mu L, with equality when the residual is the bottom eigenvector."""
    key = jax.random.PRNGKey(8)
    n, p = 5, 12
    phi_mat = jax.random.normal(key, (n, p))
    apply_fn = lambda w, x: (x @ w)[:, None]  # noqa: E731  linear model, x = features
    w0 = jax.random.normal(jax.random.fold_in(key, 1), (p,))
    ntk = phi_mat @ phi_mat.T
    mu = float(pl_condition.pl_constant(ntk))
    np.testing.assert_allclose(mu, float(jnp.linalg.eigvalsh(ntk)[0]) / n, rtol=1e-13)
    for y in [jax.random.normal(jax.random.fold_in(key, 2), (n,)),
              apply_fn(w0, phi_mat)[:, 0] - jnp.linalg.eigh(ntk)[1][:, 0]]:
        loss_fn = nk.mse_loss(apply_fn, phi_mat, y)
        metrics = pl_condition.tangent_kernel_metrics(apply_fn, loss_fn, phi_mat)(w0)
        np.testing.assert_allclose(metrics["ntk"], ntk, rtol=1e-12)
        assert float(metrics["grad_sq_norm"]) >= 2 * mu * float(loss_fn(w0)) * (1 - 1e-12)
    # the second y makes the residual the bottom eigenvector: equality
    np.testing.assert_allclose(float(metrics["grad_sq_norm"]), 2 * mu * float(loss_fn(w0)),
                               rtol=1e-10)
    # batched input
    assert pl_condition.pl_constant(jnp.stack([ntk, 2 * ntk])).shape == (2,)
    with pytest.raises(ValueError, match="ntk"):
        pl_condition.pl_constant(jnp.ones((3,)))
