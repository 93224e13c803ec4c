"""ntkbook: helpers for a course on when and why wide networks become linear.

Modules (one concept each): ``models``, ``ntk``, ``hessian``, ``spectrum``,
``kernels``, ``training``, ``stats``, ``data``, ``plotting``, ``notebook``, ``precision``,
and per chapter ``linearity`` (2), ``output_layer`` (3), ``pruning``,
``folding`` and ``pathlength`` (5), ``lowrank`` (6). Importing
the package has no side effects beyond quietening TensorFlow's C++ logging
(neural-tangents imports TensorFlow lazily, in ``ntkbook.ntk``), and sets no
precision, style or random state.
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from . import (data, folding, hessian, kernels, linearity, lowrank, models, notebook,  # noqa: E402
               ntk, output_layer, pathlength, plotting, precision, pruning, spectrum, stats,
               training)
from .hessian import hvp, spectral_norm  # noqa: E402
from .models import mlp, resnet  # noqa: E402
from .ntk import empirical_ntk, infinite_ntk_fn, kernel_change  # noqa: E402
from .precision import enable_float64  # noqa: E402
from .spectrum import fit_power_law, zonal_eigenvalues  # noqa: E402
from .training import gradient_descent, mse_loss, train  # noqa: E402

__version__ = "0.1.0"
__all__ = ["data", "folding", "hessian", "kernels", "linearity", "lowrank", "output_layer", "pathlength", "pruning", "models", "notebook", "ntk", "plotting", "precision",
           "spectrum", "stats", "training", "hvp", "spectral_norm", "mlp", "resnet",
           "empirical_ntk", "infinite_ntk_fn", "kernel_change", "enable_float64",
           "fit_power_law", "zonal_eigenvalues", "gradient_descent", "mse_loss", "train"]
