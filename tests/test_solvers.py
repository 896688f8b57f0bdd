"""Block conjugate gradient and MINRES (SPEC section 5)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sklearn_mixedlp._solvers import block_cg, minres_solve, resolve_solver

from .conftest import has_cuda, requires_cuda, requires_torch


def random_spd(n, density=0.05, seed=0):
    """A sparse SPD matrix: graph Laplacian plus a positive diagonal."""
    rng = np.random.default_rng(seed)
    W = sp.random(n, n, density=density, random_state=seed, format="csr")
    W = W + W.T
    W.setdiag(0)
    L = sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W
    return (L + sp.diags(rng.uniform(0.01, 1.0, size=n))).tocsr()


BACKENDS = [
    ("scipy", None),
    pytest.param("torch", "cpu", marks=requires_torch),
    pytest.param("torch", "cuda", marks=requires_cuda),
]


@pytest.mark.parametrize("solver, device", BACKENDS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_block_cg_equals_dense_solve(solver, device, dtype, tol):
    A = random_spd(200)
    B = np.random.default_rng(1).normal(size=(200, 4))
    B[:, 2] = 0.0  # a zero right-hand side has the zero solution
    result = block_cg(A, B, tol=tol, max_iter=2000, solver=solver, device=device, dtype=dtype)
    X_ref = np.linalg.solve(A.toarray(), B)
    assert result.converged and result.n_iter >= 1
    assert np.all(result.residuals <= tol)
    # the true relative residual meets the tolerance, up to rounding
    true_res = np.linalg.norm(B - A @ result.X, axis=0) / np.maximum(
        np.linalg.norm(B, axis=0), 1.0
    )
    assert np.all(true_res <= 10 * tol)
    np.testing.assert_allclose(result.X, X_ref, atol=1e3 * tol * np.abs(X_ref).max())
    np.testing.assert_array_equal(result.X[:, 2], 0.0)


@requires_torch
def test_scipy_and_torch_backends_agree():
    A = random_spd(300, seed=3)
    B = np.random.default_rng(4).normal(size=(300, 5))
    a = block_cg(A, B, tol=1e-8, solver="scipy")
    b = block_cg(A, B, tol=1e-8, solver="torch", device="cpu")
    np.testing.assert_allclose(a.X, b.X, rtol=1e-6, atol=1e-8)
    assert abs(a.n_iter - b.n_iter) <= 2


def test_columns_converge_independently():
    """Each column stops on its own relative residual: scaling one column of
    B scales its solution and does not change the others."""
    A = random_spd(150, seed=5)
    B = np.random.default_rng(6).normal(size=(150, 3))
    a = block_cg(A, B, tol=1e-9)
    B2 = B * [1.0, 1e6, 1.0]
    b = block_cg(A, B2, tol=1e-9)
    np.testing.assert_allclose(b.X, a.X * [1.0, 1e6, 1.0], rtol=1e-6)


def test_warm_start_from_solution_needs_no_iteration():
    A = random_spd(100, seed=7)
    B = np.random.default_rng(8).normal(size=(100, 2))
    X = np.linalg.solve(A.toarray(), B)
    result = block_cg(A, B, x0=X, tol=1e-8)
    assert result.n_iter == 0 and result.converged
    cold = block_cg(A, B, tol=1e-8)
    warm = block_cg(A, B, x0=X + 1e-3, tol=1e-8)
    assert warm.n_iter < cold.n_iter


def test_convergence_warning_when_stopped_short():
    A = random_spd(200, seed=9)
    B = np.random.default_rng(10).normal(size=(200, 3))
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        result = block_cg(A, B, tol=1e-12, max_iter=2)
    assert result.n_iter == 2 and not result.converged


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")
def test_minres_solves_indefinite_system():
    rng = np.random.default_rng(11)
    M = random_spd(120, seed=11) - sp.diags(np.full(120, 0.5))  # indefinite
    eig = np.linalg.eigvalsh(M.toarray())
    assert eig.min() < 0 < eig.max()
    B = rng.normal(size=(120, 3))
    result = minres_solve(M.tocsr(), B, tol=1e-8, max_iter=5000)
    assert result.converged
    np.testing.assert_allclose(result.X, np.linalg.solve(M.toarray(), B), atol=1e-5)


def test_resolve_solver_errors():
    with pytest.raises(ValueError, match="Unknown solver"):
        resolve_solver("cholesky", "auto")
    with pytest.raises(ValueError, match="Unknown device"):
        resolve_solver("auto", "tpu")
    with pytest.raises(ValueError, match="solver='scipy'"):
        resolve_solver("scipy", "cuda")
    assert resolve_solver("scipy", "auto") == ("scipy", None)
    assert resolve_solver("auto", "cpu") == ("scipy", None)


@requires_torch
@pytest.mark.skipif(has_cuda(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_solver("torch", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_solver("auto", "cuda")
    assert resolve_solver("torch", "auto") == ("torch", "cpu")


def test_missing_torch_names_the_extra(monkeypatch):
    import importlib

    real_import = importlib.import_module

    def fake_import(name, *args):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match=r"sklearn-mixedlp\[torch\]"):
        resolve_solver("torch", "cpu")
    assert resolve_solver("auto", "auto") == ("scipy", None)


def test_progress_display(capsys):
    A = random_spd(100, seed=12)
    B = np.random.default_rng(13).normal(size=(100, 2))
    block_cg(A, B, tol=1e-8)
    assert capsys.readouterr() == ("", "")
    result = block_cg(A, B, tol=1e-8, verbose=2)
    out, err = capsys.readouterr()
    assert f"{result.n_iter} iterations" in out
    assert "conjugate gradient (scipy)" in err  # the tqdm bar
