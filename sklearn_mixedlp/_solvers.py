"""Linear solvers for the propagation systems (SPEC section 5).

:func:`block_cg` solves ``A X = B`` for a sparse symmetric positive-definite
``A`` and all ``C`` right-hand sides at once: one sparse-matrix x dense-block
product per iteration, Jacobi preconditioning, a relative residual
tolerance per column. The same loop runs on numpy arrays with a scipy
sparse matrix (``solver='scipy'``) and on torch tensors with
``torch.sparse_csr_tensor`` (``solver='torch'``, CUDA or CPU): it only uses
arithmetic that both array types share.

:func:`minres_solve` handles the possibly indefinite LPDR system (eq. 25).
"""

import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.exceptions import ConvergenceWarning
from tqdm.auto import tqdm

from ._utils import import_optional, is_installed

SOLVERS = ("auto", "scipy", "torch")


@dataclass
class SolveResult:
    """Solution of a block solve.

    Attributes
    ----------
    X : ndarray of shape (n, n_rhs)
        Solution, as a float64 numpy array.
    n_iter : int
        Iterations performed (the maximum over the columns).
    residuals : ndarray of shape (n_rhs,)
        Final relative residual ``||b - A x|| / ||b||`` of each column.
    converged : bool
        Whether every column reached the tolerance.
    """

    X: np.ndarray
    n_iter: int
    residuals: np.ndarray
    converged: bool


def _is_cuda(device):
    return isinstance(device, str) and device.startswith("cuda")


def resolve_solver(solver, device):
    """Pick the backend and the torch device for ``solver`` and ``device``.

    Parameters
    ----------
    solver : {'auto', 'scipy', 'torch'}
        ``'auto'`` uses torch when a CUDA device is requested or available,
        scipy otherwise.
    device : str
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.

    Returns
    -------
    solver : {'scipy', 'torch'}
    device : str or None
        The torch device string, or None for scipy.

    Raises
    ------
    ValueError
        For an unknown solver or device, ``device='cuda'`` without a
        usable GPU, or ``solver='scipy'`` with a CUDA device.
    ImportError
        When torch is needed but not installed.
    """
    if solver not in SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}; expected one of {SOLVERS}.")
    if not (device in ("auto", "cpu") or _is_cuda(device)):
        raise ValueError(
            f"Unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'."
        )
    if solver == "scipy":
        if _is_cuda(device):
            raise ValueError(
                f"solver='scipy' runs on the CPU and cannot use device={device!r}; "
                "use solver='torch' (or 'auto') for a GPU."
            )
        return "scipy", None
    if solver == "auto" and not _is_cuda(device):
        if device == "cpu" or not is_installed("torch"):
            return "scipy", None
        import torch

        if not torch.cuda.is_available():
            return "scipy", None
        return "torch", "cuda"
    torch = import_optional("torch", f"solver={solver!r} with device={device!r}")
    if device == "auto":
        return "torch", "cuda" if torch.cuda.is_available() else "cpu"
    if _is_cuda(device):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                "(no GPU, or torch was built without CUDA); use device='cpu' "
                "or 'auto'."
            )
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible."
            )
    return "torch", device


def _torch_operator(A, device, dtype):
    torch = import_optional("torch", "solver='torch'")
    A = sp.csr_matrix(A)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    with warnings.catch_warnings():
        # torch flags its sparse CSR support as beta on construction.
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*", category=UserWarning)
        At = torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr.astype(np.int64)),
            torch.from_numpy(A.indices.astype(np.int64)),
            torch.from_numpy(A.data.astype(dtype)),
            size=A.shape,
            dtype=tdtype,
            device=device,
        )

    def to_device(M):
        return torch.from_numpy(np.ascontiguousarray(M, dtype=dtype)).to(device)

    def matmul(P):
        return At @ P

    return matmul, to_device, lambda T: T.double().cpu().numpy()


def block_cg(
    A,
    B,
    *,
    x0=None,
    tol=1e-6,
    max_iter=1000,
    solver="scipy",
    device=None,
    dtype=np.float64,
    verbose=0,
):
    """Jacobi-preconditioned conjugate gradient on all columns of ``B``.

    Each column runs its own CG recurrence, but all columns share one
    sparse-matrix x dense-block product per iteration. A column stops
    updating once its relative residual ``||b - A x|| / ||b||`` is at most
    ``tol`` (an all-zero ``b`` uses the absolute residual).

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive definite, with a positive diagonal.
    B : ndarray of shape (n, n_rhs)
        Right-hand sides.
    x0 : ndarray of shape (n, n_rhs), default=None
        Warm start; zeros when None.
    tol : float, default=1e-6
        Per-column relative residual tolerance.
    max_iter : int, default=1000
        Maximum number of iterations.
    solver : {'scipy', 'torch'}, default='scipy'
        Array backend (resolve ``'auto'`` with :func:`resolve_solver`).
    device : str, default=None
        Torch device for ``solver='torch'``.
    dtype : {np.float64, np.float32}, default=np.float64
        Working precision.
    verbose : int, default=0
        Print a summary line when >= 1; show a progress bar with the
        largest residual when >= 2.

    Returns
    -------
    result : SolveResult
        Solution, iteration count and final residuals. A
        :class:`~sklearn.exceptions.ConvergenceWarning` is issued when some
        column did not reach ``tol`` within ``max_iter`` iterations.
    """
    diag = A.diagonal()
    if np.any(diag <= 0):
        raise ValueError("block_cg needs a matrix with a positive diagonal.")
    if x0 is None:
        x0 = np.zeros(B.shape, dtype=dtype)
    if solver == "torch":
        matmul, to_array, to_numpy = _torch_operator(A, device, dtype)
    else:
        A_typed = sp.csr_matrix(A, dtype=dtype)

        def matmul(P):
            return A_typed @ P

        def to_array(M):
            return np.ascontiguousarray(M, dtype=dtype)

        def to_numpy(M):
            return np.asarray(M, dtype=np.float64)

    inv_diag = to_array((1.0 / diag)[:, None])
    B, X = to_array(B), to_array(x0)

    R = B - matmul(X)
    Z = inv_diag * R
    P = Z
    rz = (R * Z).sum(0)
    b_norm = (B * B).sum(0) ** 0.5
    b_norm = b_norm + (b_norm == 0)  # zero right-hand side: absolute residual
    start = time.perf_counter()
    n_iter = 0
    progress = tqdm(
        total=max_iter, desc=f"conjugate gradient ({solver})", disable=verbose < 2,
        leave=False,
    )
    while True:
        rel = ((R * R).sum(0) ** 0.5) / b_norm
        active = rel > tol
        if not bool(active.any()) or n_iter >= max_iter:
            break
        # Frozen (converged) columns take zero steps; the "+ ~active" terms
        # keep their denominators away from 0.
        AP = matmul(P)
        pAp = (P * AP).sum(0)
        alpha = active * rz / (pAp + ~active)
        X = X + alpha * P
        R = R - alpha * AP
        Z = inv_diag * R
        rz_new = (R * Z).sum(0)
        beta = active * rz_new / (rz + ~active)
        P = Z + beta * P
        rz = rz_new
        n_iter += 1
        progress.update()
        if verbose >= 2 and n_iter % 10 == 0:
            progress.set_postfix(residual=f"{float(rel.max()):.1e}")
    progress.close()
    residuals = to_numpy(rel)
    converged = bool((residuals <= tol).all())
    if verbose:
        print(
            f"[block_cg] {solver}: {n_iter} iterations in "
            f"{time.perf_counter() - start:.2f}s, max relative residual "
            f"{residuals.max():.2e}"
        )
    if not converged:
        warnings.warn(
            f"Conjugate gradient stopped after max_iter={max_iter} iterations "
            f"with relative residual {residuals.max():.2e} > tol={tol:g} in "
            f"{int((residuals > tol).sum())} of {residuals.size} column(s). "
            "Increase max_iter or tol.",
            ConvergenceWarning,
        )
    return SolveResult(to_numpy(X), n_iter, residuals, converged)


def minres_solve(A, B, *, x0=None, tol=1e-6, max_iter=1000):
    """MINRES, one column at a time, for a symmetric possibly indefinite
    ``A`` (the LPDR system, eq. 25).

    Preconditioned with ``1 / |diag(A)|`` (SPD, as MINRES requires) when the
    diagonal has no zero. Returns a :class:`SolveResult`; a
    :class:`~sklearn.exceptions.ConvergenceWarning` is issued when a column
    does not reach ``tol``.
    """
    diag = np.abs(A.diagonal())
    M = sp.diags(1.0 / diag) if np.all(diag > 0) else None
    X = np.zeros(B.shape) if x0 is None else np.array(x0, dtype=np.float64)
    n_iter = 0
    residuals = np.zeros(B.shape[1])
    for c in range(B.shape[1]):
        b_norm = np.linalg.norm(B[:, c]) or 1.0
        count = [0]

        def callback(_, count=count):
            count[0] += 1

        # MINRES stops on a backward error, ||r|| / (||A|| ||x|| + ||b||),
        # which can be far looser than ||r|| / ||b|| <= tol: restart from the
        # current iterate with rtol tightened by the gap until it holds.
        rtol = tol
        for _ in range(6):
            X[:, c], _ = spla.minres(
                A, B[:, c], x0=X[:, c], rtol=rtol, maxiter=max_iter, M=M,
                callback=callback,
            )
            residuals[c] = np.linalg.norm(B[:, c] - A @ X[:, c]) / b_norm
            if residuals[c] <= tol or count[0] >= max_iter:
                break
            rtol = max(rtol * 0.5 * tol / residuals[c], np.finfo(float).eps)
        n_iter = max(n_iter, count[0])
    converged = bool((residuals <= tol).all())
    if not converged:
        warnings.warn(
            f"MINRES stopped with relative residual {residuals.max():.2e} "
            f"(tol={tol:g}, max_iter={max_iter}). The LPDR system may be "
            "singular; lower beta or increase max_iter.",
            ConvergenceWarning,
        )
    return SolveResult(X, max(n_iter, 1), residuals, converged)
