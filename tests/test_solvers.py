"""Block conjugate gradient and MINRES."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sklearn_mixedlp import _kernels
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_overwrite_x0_solves_in_the_warm_start_buffer(dtype):
    A = random_spd(300, seed=11)
    B = np.random.default_rng(12).normal(size=(300, 3))
    start = np.linalg.solve(A.toarray(), B) + 1e-2
    kept = start.copy()
    plain = block_cg(A, B, x0=start, tol=1e-8, dtype=dtype, reorder=None)
    np.testing.assert_array_equal(start, kept)  # x0 left alone by default
    result = block_cg(
        A, B, x0=start, tol=1e-8, dtype=dtype, reorder=None, overwrite_x0=True
    )
    assert np.shares_memory(result.X, start)
    np.testing.assert_allclose(result.X, plain.X, rtol=0, atol=1e-10)
    residual = np.linalg.norm(B - A @ result.X, axis=0) / np.linalg.norm(B, axis=0)
    assert residual.max() <= 1e-8


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


def test_missing_torch_names_the_extra(hide_torch):
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


# --- float32 with float64 residuals, threads, reordering -------------------


def shuffled_band(n, width=5, seed=0):
    """SPD band matrix (a path-like graph Laplacian plus a ridge) with its
    rows and columns shuffled: the reverse Cuthill-McKee order recovers a
    band, far more local than the shuffled order."""
    rng = np.random.default_rng(seed)
    offsets = list(range(1, width + 1))
    W = sp.diags([rng.uniform(0.5, 1.0, n - k) for k in offsets], offsets, shape=(n, n))
    W = W + W.T
    A = sp.diags(np.asarray(W.sum(axis=1)).ravel() + 0.1) - W
    perm = rng.permutation(n)
    return sp.csr_matrix(A)[perm][:, perm]


@pytest.mark.parametrize("solver, device", BACKENDS)
def test_float32_iterations_meet_a_float64_tolerance(solver, device):
    """float32 alone stalls near 1e-7; the float64 residual refresh takes it
    to 1e-10, in about as many iterations as float64."""
    A = random_spd(300, seed=14)
    B = np.random.default_rng(15).normal(size=(300, 4))
    ref = block_cg(A, B, tol=1e-10, solver=solver, device=device)
    result = block_cg(A, B, tol=1e-10, solver=solver, device=device, dtype=np.float32)
    true_res = np.linalg.norm(B - A @ result.X, axis=0) / np.linalg.norm(B, axis=0)
    assert result.converged and result.X.dtype == np.float64
    assert np.all(true_res <= 1.01e-10)
    np.testing.assert_allclose(result.residuals, true_res, rtol=1e-3)
    np.testing.assert_allclose(result.X, ref.X, rtol=1e-7, atol=1e-9)
    assert result.n_iter <= ref.n_iter + 5


def ill_conditioned_system(n=300):
    """A Laplacian plus a 1e-7 ridge (cond ~3e8), and two right-hand sides."""
    W = sp.random(n, n, density=0.05, random_state=0, format="csr")
    W = W + W.T
    W.setdiag(0)
    A = (sp.diags(np.asarray(W.sum(axis=1)).ravel() + 1e-7) - W).tocsr()
    return A, np.random.default_rng(18).normal(size=(n, 2))


def test_float32_stall_solves_again_in_float64(capsys):
    """On a system too ill-conditioned for float32 (cond ~3e8) the solve
    still meets tol, in float64, and says so."""
    A, B = ill_conditioned_system()
    result = block_cg(A, B, tol=1e-6, max_iter=3000, dtype=np.float32, verbose=1)
    true_res = np.linalg.norm(B - A @ result.X, axis=0) / np.linalg.norm(B, axis=0)
    assert result.converged and np.all(true_res <= 1.01e-6)
    assert "solved again in float64" in capsys.readouterr().out
    assert result.n_iter < 500


@pytest.mark.parametrize("solver, device", BACKENDS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-8)])
@pytest.mark.parametrize("reorder", [None, "rcm"])
def test_sparse_right_hand_sides_equal_dense(solver, device, dtype, tol, reorder):
    """A sparse B (kept as its nonzero rows) gives the solve of its dense
    copy: from zero and from a warm start, on reordered rows too."""
    A = random_spd(250, seed=21)
    B = sp.random(250, 5, density=0.04, random_state=22, format="lil")
    B[3, 1] = -2.0  # a negative source
    B = B.tocsr()
    x0 = np.random.default_rng(23).normal(size=(250, 5))
    # the compiled kernels read the sparse rows in their own residual kernel
    kernels = ["scipy", "numba"] if solver == "scipy" and _kernels.installed() else ["auto"]
    for warm, kernel in itertools.product((None, x0), kernels):
        kwargs = dict(
            x0=warm, tol=tol, solver=solver, device=device, dtype=dtype,
            reorder=reorder, kernel=kernel,
        )
        dense = block_cg(A, B.toarray(), **kwargs)
        sparse = block_cg(A, B, **kwargs)
        assert sparse.converged and sparse.X.dtype == np.float64
        np.testing.assert_allclose(sparse.X, dense.X, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(sparse.residuals, dense.residuals, rtol=1e-6)
        assert sparse.n_iter == dense.n_iter
    X_ref = np.linalg.solve(A.toarray(), B.toarray())
    np.testing.assert_allclose(sparse.X, X_ref, atol=1e3 * tol * np.abs(X_ref).max())


@pytest.mark.parametrize("solver, device", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_float32_to_a_loose_tolerance_stays_float32(solver, device, sparse):
    """At tol >= 1e-4 float32 alone meets the tolerance: the solution comes
    back in float32, with its true residual at tol, and no more iterations
    than float64 needs."""
    A = random_spd(300, seed=24)
    B = np.random.default_rng(25).normal(size=(300, 4))
    B[:, 1] = 0.0
    if sparse:
        B[10:] = 0.0
        B = sp.csr_matrix(B)
    dense_B = B.toarray() if sparse else B
    ref = block_cg(A, B, tol=1e-3, solver=solver, device=device)
    result = block_cg(A, B, tol=1e-3, solver=solver, device=device, dtype=np.float32)
    assert result.converged and result.X.dtype == np.float32
    X = result.X.astype(np.float64)
    true_res = np.linalg.norm(dense_B - A @ X, axis=0) / np.maximum(
        np.linalg.norm(dense_B, axis=0), 1.0
    )
    assert np.all(true_res <= 1.01e-3)
    np.testing.assert_allclose(result.residuals, true_res, rtol=1e-3, atol=1e-9)
    np.testing.assert_array_equal(result.X[:, 1], 0.0)
    assert result.n_iter <= ref.n_iter + 1


def test_loose_float32_solve_that_misses_is_refined():
    """On a system float32 cannot resolve, the loose float32 solve's true
    residual misses tol; the solve goes on, in float64, and meets it."""
    A, B = ill_conditioned_system()
    result = block_cg(A, B, tol=1e-4, max_iter=3000, dtype=np.float32)
    true_res = np.linalg.norm(B - A @ result.X, axis=0) / np.linalg.norm(B, axis=0)
    assert result.converged and result.X.dtype == np.float64
    assert np.all(true_res <= 1.01e-4)


def test_float32_warm_start_and_frozen_columns():
    A = random_spd(150, seed=19)
    B = np.random.default_rng(20).normal(size=(150, 3))
    B[:, 1] = 0.0
    X = np.linalg.solve(A.toarray(), B)
    assert block_cg(A, B, x0=X, tol=1e-8, dtype=np.float32).n_iter == 0
    result = block_cg(A, B * [1.0, 1.0, 1e6], tol=1e-10, dtype=np.float32)
    np.testing.assert_allclose(result.X, X * [1.0, 1.0, 1e6], rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(result.X[:, 1], 0.0)


def test_threaded_product_equals_plain_product(monkeypatch):
    from sklearn_mixedlp import _solvers

    monkeypatch.setattr(_solvers, "_CHUNK_BYTES", 4096)  # many chunks
    A = random_spd(1000, seed=21)
    P = np.random.default_rng(22).normal(size=(1000, 7))
    for dtype in (np.float64, np.float32):
        blocks = _solvers._HostBlocks(1.0 / A.diagonal(), 7, dtype, n_threads=2)
        assert blocks.n_threads == 2 and len(blocks.bounds) > 5
        product = _solvers._ScipyProduct(A, dtype, blocks)
        Pd = P.astype(dtype)
        out = np.full_like(Pd, np.nan)
        dots = product(Pd, out, dot=True)
        blocks.close()
        plain = sp.csr_matrix(A, dtype=dtype) @ Pd
        np.testing.assert_array_equal(out, plain)
        np.testing.assert_allclose(dots, (Pd * plain).sum(0), rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_result_does_not_depend_on_the_thread_count(monkeypatch):
    from sklearn_mixedlp import _solvers

    monkeypatch.setattr(_solvers, "_CHUNK_BYTES", 4096)
    A = random_spd(1000, seed=23)
    B = np.random.default_rng(24).normal(size=(1000, 5))
    for dtype in (np.float64, np.float32):
        one = block_cg(A, B, tol=1e-9, dtype=dtype, n_threads=1)
        two = block_cg(A, B, tol=1e-9, dtype=dtype, n_threads=2)
        np.testing.assert_array_equal(one.X, two.X)
        assert one.n_iter == two.n_iter


def test_fused_updates_match_the_textbook_recurrence():
    """One step of the chunked updates equals the plain numpy formulas."""
    from sklearn_mixedlp._solvers import _HostBlocks

    rng = np.random.default_rng(25)
    n, c = 500, 3
    inv_diag = rng.uniform(0.5, 2.0, n)
    X, R, P, AP = (rng.normal(size=(n, c)) for _ in range(4))
    alpha, beta = rng.normal(size=c), rng.normal(size=c)
    blocks = _HostBlocks(inv_diag, c, np.float64, n_threads=2)
    X2, R2, P2 = X.copy(), R.copy(), P.copy()
    rr, rz = blocks.step(X2, R2, P2, AP, alpha)
    np.testing.assert_allclose(X2, X + alpha * P)
    np.testing.assert_allclose(R2, R - alpha * AP)
    np.testing.assert_allclose(rr, (R2 * R2).sum(0))
    np.testing.assert_allclose(rz, (R2 * R2 * inv_diag[:, None]).sum(0))
    blocks.direction(P2, R2, beta)
    np.testing.assert_allclose(P2, inv_diag[:, None] * R2 + beta * P)
    np.testing.assert_allclose(blocks.dot(P, AP), (P * AP).sum(0))
    blocks.close()


def test_locality_order():
    from sklearn_mixedlp._solvers import _distinct_fraction, _locality_order

    A = shuffled_band(3000)
    # a small block fits in cache: 'auto' leaves the rows alone
    assert _locality_order(A, 8, "auto") is None
    perm = _locality_order(A, 2**20, "auto")
    assert perm is not None and np.array_equal(np.sort(perm), np.arange(3000))
    # consecutive rows of the band share their neighbours
    assert _distinct_fraction(A) > 0.9
    assert _distinct_fraction(A, perm) < 0.2
    assert _distinct_fraction(A[perm][:, perm].tocsr()) == pytest.approx(
        _distinct_fraction(A, perm), abs=0.05
    )
    # an already banded matrix gains nothing: 'auto' keeps its order
    band = A[perm][:, perm].tocsr()
    assert _locality_order(band, 2**20, "auto") is None
    assert _locality_order(band, 2**20, "rcm") is not None
    with pytest.raises(ValueError, match="reorder"):
        _locality_order(A, 8, "metis")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reordered_solve_gives_the_same_solution(dtype, capsys):
    A = shuffled_band(2000, seed=26)
    B = np.random.default_rng(27).normal(size=(2000, 3))
    x0 = np.random.default_rng(28).normal(size=(2000, 3)) * 1e-2
    plain = block_cg(A, B, x0=x0, tol=1e-9, dtype=dtype, reorder=None)
    reordered = block_cg(A, B, x0=x0, tol=1e-9, dtype=dtype, reorder="rcm", verbose=1)
    assert "rows reordered" in capsys.readouterr().out
    assert reordered.converged
    true_res = np.linalg.norm(B - A @ reordered.X, axis=0) / np.linalg.norm(B, axis=0)
    assert np.all(true_res <= 1.01e-9)  # in the original row order
    np.testing.assert_allclose(reordered.X, plain.X, rtol=1e-6, atol=1e-8)
    assert abs(reordered.n_iter - plain.n_iter) <= 2


@requires_torch
def test_backends_agree_in_float32():
    A = random_spd(300, seed=29)
    B = np.random.default_rng(30).normal(size=(300, 5))
    a = block_cg(A, B, tol=1e-8, solver="scipy", dtype=np.float32)
    b = block_cg(A, B, tol=1e-8, solver="torch", device="cpu", dtype=np.float32)
    np.testing.assert_allclose(a.X, b.X, rtol=1e-5, atol=1e-7)
    assert abs(a.n_iter - b.n_iter) <= 2


def test_bad_dtype_is_an_error():
    A = random_spd(50)
    with pytest.raises(ValueError, match="dtype"):
        block_cg(A, np.ones((50, 1)), dtype=np.float16)


def graph_system(n=400, cut=True, mu=0.05, seed=0):
    """A normalised propagation system on a random graph (cut by random
    shares when ``cut``), as the estimators hand it to the solver: a
    :class:`_GraphSystem` and a sparse right-hand side on 20 rows."""
    from sklearn_mixedlp._label_propagation import _cut_values, _Pattern
    from sklearn_mixedlp._solvers import _GraphSystem

    rng = np.random.default_rng(seed)
    W = sp.random(n, n, density=0.03, random_state=seed, format="csr")
    W = W + W.T + sp.diags(np.ones(n - 1), 1) + sp.diags(np.ones(n - 1), -1)
    W = sp.csr_matrix(W)
    W.setdiag(0)
    W.eliminate_zeros()
    W.sort_indices()
    kernels = _kernels.get()
    # shares below 1 / beta: every edge keeps some affinity
    share = (0.9 * rng.random(W.nnz)).astype(np.float32) if cut else None
    values, degree = (
        _cut_values(W, share, 0.8, kernels)[:2] if cut
        else (W.data, np.asarray(W.sum(axis=1)).ravel())
    )
    scale, diagonal = 1.0 / np.sqrt(degree), np.full(n, 1.0 + mu)
    pattern = _Pattern(W, kernels)

    def build():
        return pattern.system(values, scale, -1.0, diagonal)

    A32 = pattern.system(values, scale, -1.0, diagonal, None, np.float32)
    B = sp.random(n, 3, density=0.05, random_state=seed + 1, format="csr")
    return _GraphSystem(A32, W, share, 0.8, scale, -1.0, diagonal, build), B


@pytest.mark.skipif(not _kernels.installed(), reason="numba not installed")
@pytest.mark.parametrize("cut", [True, False])
def test_graph_system_residuals_match_its_matrix(cut):
    """float32 steps with float64 residuals read from the graph (and the
    cut shares) solve the system the float64 matrix defines: the same
    solution as a float64 solve of the built matrix; the other paths (scipy
    kernels, float64 steps) build that matrix and agree too."""
    system, B = graph_system(cut=cut)
    A = system.build()
    reference = block_cg(A, B, tol=1e-12, dtype=np.float64, reorder=None).X
    graph = block_cg(system, B, tol=1e-10, dtype=np.float32, kernel="numba", reorder=None)
    assert graph.converged
    true = np.linalg.norm(B.toarray() - A @ graph.X, axis=0) / sp.linalg.norm(B, axis=0)
    assert np.all(true <= 1.01e-10)
    np.testing.assert_allclose(graph.X, reference, atol=1e-9 * np.abs(reference).max())
    for kwargs in ({"kernel": "scipy", "dtype": np.float32}, {"dtype": np.float64}):
        other = block_cg(system, B, tol=1e-10, reorder=None, **kwargs)
        np.testing.assert_allclose(other.X, reference, atol=1e-8 * np.abs(reference).max())


def test_columns_per_pass():
    from sklearn_mixedlp._solvers import columns_per_pass

    # 3 float32 blocks and a float64 solution: 20 bytes per row and column
    assert columns_per_pass(2**20, 100, np.float32, working_memory=400) == 20
    assert columns_per_pass(2**20, 100, np.float64, working_memory=400) == 12
    assert columns_per_pass(2**20, 100, np.float32, working_memory=10**6) == 100
    assert columns_per_pass(2**30, 100, np.float32, working_memory=1) == 1


def passes_of(capsys):
    out = capsys.readouterr().out
    return int(out.split(" passes of")[0].rsplit("(", 1)[1]) if "passes of" in out else 1


@pytest.mark.parametrize("solver, device", BACKENDS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-8), (np.float32, 1e-3)])
@pytest.mark.parametrize("reorder", [None, "rcm"])
def test_solve_in_column_passes_equals_one_pass(solver, device, dtype, tol, reorder, capsys):
    """A working memory that holds 2 columns of the 5 solves them in 3
    passes: each column meets tol, the solution equals the one-pass one,
    in the precision a one-pass solve returns."""
    n = 300
    A = shuffled_band(n)
    B = sp.random(n, 5, density=0.05, random_state=3, format="csr")
    kwargs = dict(tol=tol, solver=solver, device=device, dtype=dtype, reorder=reorder, verbose=1)
    one = block_cg(A, B, working_memory=1, **kwargs)
    assert passes_of(capsys) == 1
    mib = 2 * n * (3 * np.dtype(dtype).itemsize + 8) / 2**20
    passes = block_cg(A, B, working_memory=mib, **kwargs)
    assert passes_of(capsys) == 3
    assert passes.converged and passes.X.dtype == one.X.dtype
    true = np.linalg.norm(B.toarray() - A @ passes.X, axis=0) / sp.linalg.norm(B, axis=0)
    assert np.all(true <= tol * 1.01)
    scale = np.abs(one.X).max()
    np.testing.assert_allclose(passes.X, one.X, atol=10 * tol * scale)


@pytest.mark.parametrize("x0_dtype", [np.float64, np.float32])
def test_passes_write_the_solution_into_the_warm_start(x0_dtype, capsys):
    """With overwrite_x0, each pass writes its columns into x0 in x0's
    precision (a float32 x0 gets the float64 solution rounded) and x0 is
    the returned solution."""
    n = 300
    A = shuffled_band(n)
    B = np.random.default_rng(0).normal(size=(n, 4))
    exact = np.linalg.solve(A.toarray(), B)
    x0 = (exact + 0.1 * np.random.default_rng(1).normal(size=exact.shape)).astype(x0_dtype)
    mib = 1 * n * 20 / 2**20
    result = block_cg(
        A, B, x0=x0, overwrite_x0=True, tol=1e-9, dtype=np.float32, reorder=None,
        working_memory=mib, verbose=1,
    )
    assert passes_of(capsys) == 4
    assert result.X is x0
    rounding = 1e-9 if x0_dtype == np.float64 else 2 * np.finfo(np.float32).eps
    np.testing.assert_allclose(x0, exact, atol=rounding * 10 * np.abs(exact).max())


@pytest.mark.skipif(not _kernels.installed(), reason="numba not installed")
def test_graph_system_in_column_passes(capsys):
    """The final solve's graph system (float64 residuals read from the
    graph) solved one column per pass equals its one-pass solve."""
    system, B = graph_system()
    one = block_cg(system, B, tol=1e-10, dtype=np.float32, kernel="numba", reorder=None)
    passes = block_cg(
        system, B, tol=1e-10, dtype=np.float32, kernel="numba", reorder=None,
        working_memory=400 * 20 / 2**20, verbose=1,
    )
    assert passes_of(capsys) == 3
    np.testing.assert_allclose(passes.X, one.X, atol=1e-8 * np.abs(one.X).max())


def test_passes_without_overwrite_leave_a_float32_warm_start(capsys):
    """Without overwrite_x0 (and with the rows reordered) a solve in passes
    leaves x0 as it was and returns the float64 solution a one-pass solve
    returns."""
    n = 300
    A = shuffled_band(n)
    B = np.random.default_rng(0).normal(size=(n, 4))
    x0 = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
    before = x0.copy()
    kwargs = dict(x0=x0, tol=1e-9, dtype=np.float32, reorder="rcm", verbose=1)
    one = block_cg(A, B, **kwargs)
    passes = block_cg(A, B, working_memory=n * 20 / 2**20, **kwargs)
    assert passes_of(capsys) == 4
    np.testing.assert_array_equal(x0, before)
    assert passes.X.dtype == one.X.dtype == np.float64
    np.testing.assert_allclose(passes.X, one.X, atol=1e-8 * np.abs(one.X).max())


@pytest.mark.parametrize("tol, warm_dtype", [(1e-3, np.float32), (1e-9, np.float64)])
def test_pass_warm_starts_are_in_the_precision_of_the_iterate(monkeypatch, tol, warm_dtype):
    """Each pass copies its columns of x0 once, in the precision the pass
    iterates on: float32 for a float32 solve to a loose tol (the iterate
    itself, no float64 copy beside it), float64 where the solution is
    accumulated in float64; the passes still equal the one-pass solve."""
    from sklearn_mixedlp import _solvers

    n = 300
    A = shuffled_band(n)
    B = np.random.default_rng(0).normal(size=(n, 4))
    x0 = np.random.default_rng(1).normal(size=(n, 4)).astype(np.float32)
    kwargs = dict(tol=tol, dtype=np.float32, reorder=None)
    one = block_cg(A, B, x0=x0, **kwargs)
    seen = []
    real = _solvers._solve

    def spy(A, B, x0, *args, **kw):
        seen.append(x0.dtype)
        return real(A, B, x0, *args, **kw)

    monkeypatch.setattr(_solvers, "_solve", spy)
    passes = block_cg(A, B, x0=x0.copy(), overwrite_x0=True, working_memory=n * 20 / 2**20, **kwargs)
    assert seen == [warm_dtype] * 4
    np.testing.assert_allclose(passes.X, one.X, atol=10 * tol * np.abs(one.X).max())
