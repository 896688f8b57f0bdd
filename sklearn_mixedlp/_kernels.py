"""Compiled kernels of the solves and the mining (numba, optional).

The conjugate gradient spends its time in a sparse x dense product and a
few streaming passes over ``N x C`` blocks, the mining in per-edge dot
products of class distributions. numpy and scipy run each of these as
several passes (scipy's CSR kernel is a plain loop that the compiler does
not vectorise over the ``C`` columns). The kernels here do each in one
pass, vectorised over the columns:

- :func:`csr_matmat`: ``out = A @ X`` on a range of row chunks, and the
  column dot products ``sum_i X_ic (A X)_ic`` per chunk, fused (row-blocked:
  each output row is accumulated in cache while the rows of ``X`` that its
  stored entries name are gathered);
- :func:`csr_residual`: ``R = B - A @ X`` and ``sum_i R_ic^2`` per chunk
  (``B`` stored by its nonzero rows);
- :func:`graph_residual`: the same for a label-propagation system read
  from its graph (and cut shares), without a float64 copy of the system;
- :func:`cg_step` and :func:`cg_direction`: the fused CG vector updates
  (:func:`cg_direction_coarse`: with the prolongation of a two-level
  preconditioner fused; :func:`coarse_restrict` and
  :func:`coarse_operator`: its restriction and coarse matrix);
- :func:`gather_rows_in_place`: ``G = G[perm]`` for a permutation, without
  a second ``N x C`` block;
- :func:`edge_cosines`: ``1 - <U_i, U_j>`` for every stored entry of a CSR
  pattern (a sampled dense-dense product).

They are written for numba (``nogil=True``: the callers spread row chunks
over their own threads, so results do not depend on the thread count, and
``cache=True``: compiled once per machine). numba is optional: without it
(or with the environment variable ``SKLEARN_MIXEDLP_NUMBA=0``),
:func:`get` returns None and the callers use numpy and scipy, which stay
the reference the kernels are tested against.

Every per-chunk sum is accumulated in float64 and the chunks are added in
chunk order by the caller.
"""

import os
import threading
import warnings

_lock = threading.Lock()
_state = {"loaded": False, "kernels": None}

# Smallest product (stored entries x columns) worth the compiled kernels:
# their first use compiles them (a few seconds, once per machine with
# numba's disk cache; loading them from the cache takes about 0.5 s), so
# small solves stay on scipy.
MIN_WORK = 2**24


def installed():
    """Whether numba is installed."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def enabled():
    """Whether the compiled kernels may be used: numba is installed and
    ``SKLEARN_MIXEDLP_NUMBA`` is not ``0``."""
    if os.environ.get("SKLEARN_MIXEDLP_NUMBA", "1").strip() in ("0", "false", "no"):
        return False
    return installed()


def get(work=None):
    """The compiled kernels (a namespace), or None without numba.

    Parameters
    ----------
    work : int, default=None
        Size of the job (stored entries x columns). Below :data:`MIN_WORK`
        None is returned, so that small problems never wait for a
        compilation (and whether a solve uses the kernels depends on its
        size alone, not on what ran before in the process).
    """
    if work is not None and work < MIN_WORK:
        return None
    if not enabled():
        return None
    with _lock:
        if not _state["loaded"]:
            _state["loaded"] = True
            try:
                _state["kernels"] = _compile()
            except Exception as exc:  # pragma: no cover - a broken numba
                warnings.warn(
                    f"the compiled kernels could not be built ({exc}); "
                    "falling back to numpy and scipy",
                    RuntimeWarning,
                )
                _state["kernels"] = None
    return _state["kernels"]


def _compile():
    from . import _kernels_numba

    return _kernels_numba
