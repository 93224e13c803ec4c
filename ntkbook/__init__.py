"""ntkbook: helpers for a course on when and why wide networks become linear.

Modules (one concept each): ``models``, ``ntk``, ``infinite``, ``hessian``, ``spectrum``,
``kernels``, ``resntk``, ``training``, ``minibatch``, ``stats``, ``data``,
``plotting``, ``notebook``, ``precision``, and per chapter ``linearity`` (2),
``output_layer``, ``pl_condition`` and ``bottleneck`` (3), ``gates``,
``convnets``, ``pruning``, ``folding`` and ``pathlength`` (5),
``linear_tail``, ``margins`` and ``lowrank`` (6). Importing the package has no
side effects beyond quietening TensorFlow's C++ logging (neural-tangents
imports TensorFlow lazily, in ``ntkbook.infinite``), and sets no precision, style
or random state.
"""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from . import (bottleneck, convnets, data, folding, gates, hessian, infinite,  # noqa: E402
               kernels, linear_tail, linearity, lowrank, margins, minibatch, models, notebook, ntk,
               output_layer, pathlength, pl_condition, plotting, precision, pruning, resntk,
               spectrum, stats, training)
from .hessian import hvp, spectral_norm  # noqa: E402
from .models import mlp, resnet  # noqa: E402
from .infinite import infinite_ntk_fn  # noqa: E402
from .ntk import empirical_ntk, kernel_change  # noqa: E402
from .precision import enable_float64  # noqa: E402
from .spectrum import fit_power_law, zonal_eigenvalues  # noqa: E402
from .training import gradient_descent, mse_loss, train  # noqa: E402

__version__ = "0.1.0"
__all__ = ["bottleneck", "convnets", "data", "folding", "gates", "hessian", "infinite", "kernels",
           "linear_tail", "linearity", "lowrank", "margins", "minibatch", "models", "notebook",
           "ntk", "output_layer", "pathlength", "pl_condition", "plotting", "precision",
           "pruning", "resntk", "spectrum", "stats", "training",
           "hvp", "spectral_norm", "mlp", "resnet", "empirical_ntk", "infinite_ntk_fn",
           "kernel_change", "enable_float64", "fit_power_law", "zonal_eigenvalues",
           "gradient_descent", "mse_loss", "train"]
