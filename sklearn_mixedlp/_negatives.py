"""Dissimilarity ("negative") edge weights ``Wdis`` (SPEC section 3).

All functions return a symmetric, non-negative sparse CSR matrix with a
zero diagonal:

- :func:`hard_negative_weights`: edge-removal mining, eqs. 18-22;
- :func:`control_negative_weights`: the paper's 'Control' baseline;
- :func:`mom_negative_weights`: Mining on Manifolds (kNN, not mutual kNN);
- :func:`check_negatives`: user-supplied matrices or index pairs.

Edge computations run over chunks of the upper triangle of ``W`` so the
working memory is ``O(chunk * C)`` on top of the ``O(N k + N C)`` inputs.
"""

import numpy as np
import scipy.sparse as sp

from ._utils import entropy_confidence, normalize_distributions

# Edges processed per chunk is _CHUNK_ENTRIES // n_classes.
_CHUNK_ENTRIES = 2**22
# Remaining degree (relative) below which a sample is taken to have no
# neighbour left once an edge is removed.
_TINY_DEGREE = 1e-12


def _softmax(S):
    S = S - S.max(axis=1, keepdims=True)
    np.exp(S, out=S)
    S /= S.sum(axis=1, keepdims=True)
    return S


def _upper_edges(W):
    """Row, column and weight of every stored edge ``i < j`` of ``W``."""
    upper = sp.triu(W, k=1, format="coo")
    return upper.row, upper.col, upper.data


def _edge_chunks(n_edges, n_classes):
    step = max(1, _CHUNK_ENTRIES // max(n_classes, 1))
    for start in range(0, n_edges, step):
        yield slice(start, start + step)


def _symmetric_from_upper(rows, cols, values, n_samples):
    keep = values > 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    upper = sp.csr_matrix((values, (rows, cols)), shape=(n_samples, n_samples))
    Wdis = (upper + upper.T).tocsr()
    Wdis.sort_indices()
    return Wdis


def _dissimilarity(Zij, Zji):
    """``omega(Zij) omega(Zji) (1 - Zij . Zji)``: eqs. 21-22."""
    p_dis = 1.0 - np.einsum("ec,ec->e", Zij, Zji)
    return entropy_confidence(Zij) * entropy_confidence(Zji) * np.clip(p_dis, 0, 1)


def _standardized(H, scale):
    """Rows of ``H`` centred and divided by the global ``scale``."""
    H -= H.mean(axis=1, keepdims=True)
    H /= scale
    return H


def hard_negative_weights(W, F, temperature, *, scale_free=False):
    """Hard-negative weights by edge removal (eqs. 18-22).

    For each stored edge ``(i, j)`` of ``W``::

        Zt_ij = softmax(temperature * (D_ii F_i - w_ij F_j))      (20)
        Wdis_ij = omega(Zt_ij) omega(Zt_ji) (1 - Zt_ij . Zt_ji)   (21-22)

    With ``scale_free=True`` the temperature acts on the neighbour average
    without ``j`` (eq. 19), ``h_ij = (D_ii F_i - w_ij F_j) / (D_ii -
    w_ij)``, centred per row and divided by the mean over the samples of
    the spread (standard deviation over the classes) of the rows of ``F``,
    so ``temperature`` is in units of a typical row's spread whatever the
    scale of ``F`` and of the degrees; and ``Wdis_ij`` is multiplied by
    ``w_ij``, so a negative edge never outweighs its own affinity (the
    dissimilarity is measured in the units of the graph). A sample whose
    only neighbour is ``j`` has no information without it and gets no
    negative.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity matrix.
    F : ndarray of shape (n_samples, n_classes)
        Label propagation scores whose weighted neighbour average is the
        fixed point of eq. 17.
    temperature : float
        The temperature ``lambda`` of eq. 20.
    scale_free : bool, default=False
        Use the scale-free variant described above.

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
        Symmetric dissimilarity weights on the sparsity pattern of ``W``.
    """
    n_samples, n_classes = F.shape
    if n_classes < 2:
        return sp.csr_matrix((n_samples, n_samples))
    degree = np.asarray(W.sum(axis=1)).ravel()
    DF = degree[:, None] * F
    rows, cols, w = _upper_edges(W)
    row_spread = np.std(F, axis=1)
    informed = row_spread > 0  # rows without information do not set the scale
    spread = float(row_spread[informed].mean()) if informed.any() else 0.0
    if scale_free and not spread > 0:
        return sp.csr_matrix((n_samples, n_samples))
    values = np.empty(rows.size)
    for s in _edge_chunks(rows.size, n_classes):
        i, j, wij = rows[s], cols[s], w[s][:, None]
        Hij = DF[i] - wij * F[j]  # eqs. 18-19: i's scores without edge (i, j)
        Hji = DF[j] - wij * F[i]
        if scale_free:
            rest_i, rest_j = degree[i, None] - wij, degree[j, None] - wij
            Hij = _standardized(_leave_one_out_mean(Hij, rest_i), spread)
            Hji = _standardized(_leave_one_out_mean(Hji, rest_j), spread)
        Zij = _softmax(temperature * Hij)  # eq. 20
        Zji = _softmax(temperature * Hji)
        values[s] = _dissimilarity(Zij, Zji)
        if scale_free:
            values[s] *= w[s]
    return _symmetric_from_upper(rows, cols, values, n_samples)


def _leave_one_out_mean(H, rest):
    """``H / rest`` row-wise; rows with no remaining weight become 0, which
    the softmax turns into a uniform (zero-confidence) distribution."""
    out = np.zeros_like(H)
    np.divide(H, rest, out=out, where=rest > _TINY_DEGREE * np.abs(rest).max(initial=1))
    return out


def control_negative_weights(W, F, *, scale_free=False):
    """The paper's 'Control' baseline: eq. 22 with ``Zt_ij`` replaced by the
    L1-normalised ``F_i`` (negatives clipped to 0) for every ``j``.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity matrix (gives the edges).
    F : ndarray of shape (n_samples, n_classes)
        Label propagation solution.
    scale_free : bool, default=False
        Multiply each weight by the edge's affinity ``w_ij`` (as in
        :func:`hard_negative_weights`).

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
    """
    n_samples, n_classes = F.shape
    if n_classes < 2:
        return sp.csr_matrix((n_samples, n_samples))
    P, _ = normalize_distributions(F)
    rows, cols, w = _upper_edges(W)
    values = np.empty(rows.size)
    for s in _edge_chunks(rows.size, n_classes):
        values[s] = _dissimilarity(P[rows[s]], P[cols[s]])
        if scale_free:
            values[s] *= w[s]
    return _symmetric_from_upper(rows, cols, values, n_samples)


def mom_negative_weights(knn):
    """Mining on Manifolds negatives (Iscen et al. 2018).

    ``Wdis_ij = 1`` for pairs that are k-nearest neighbours in one
    direction only (kNN but not mutual kNN), 0 otherwise.

    Parameters
    ----------
    knn : sparse matrix of shape (n_samples, n_samples)
        Boolean kNN adjacency: ``knn[j, i] != 0`` when ``i`` is one of the
        ``k`` nearest neighbours of ``j``.

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
    """
    K = (sp.csr_matrix(knn) != 0).astype(np.float64)
    Wdis = abs(K - K.T).tocsr()
    Wdis.setdiag(0)
    Wdis.eliminate_zeros()
    Wdis.sort_indices()
    return Wdis


def check_negatives(negatives, n_samples):
    """Validate user-supplied negative edges and return ``Wdis``.

    Parameters
    ----------
    negatives : sparse matrix of shape (n_samples, n_samples) or array-like \
            of shape (n_pairs, 2) or (n_pairs, 3)
        Either a non-negative matrix of dissimilarity weights, or index pairs
        ``(i, j)`` with an optional weight column (default weight 1).
        Pairs listed more than once have their weights summed. The result
        is symmetrised as ``max(S, S^T)``, so each pair may be listed once.

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)

    Raises
    ------
    ValueError
        On a wrong shape, out-of-range or non-integer indices, self pairs,
        negative or non-finite weights.
    """
    if sp.issparse(negatives):
        S = sp.csr_matrix(negatives, dtype=np.float64)
        if S.shape != (n_samples, n_samples):
            raise ValueError(
                f"negatives must be a ({n_samples}, {n_samples}) matrix, one "
                f"row and column per sample; got shape {S.shape}."
            )
        S.sum_duplicates()
    else:
        pairs = np.asarray(negatives, dtype=np.float64)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 2)
        if pairs.ndim != 2 or pairs.shape[1] not in (2, 3):
            raise ValueError(
                "negatives must be a sparse matrix or an array of (i, j) or "
                f"(i, j, weight) rows; got an array of shape {pairs.shape}."
            )
        ij = pairs[:, :2]
        if not np.all(np.isfinite(ij)) or np.any(ij != np.round(ij)):
            raise ValueError("negative pair indices must be integers.")
        ij = ij.astype(np.int64)
        if ij.size and (ij.min() < 0 or ij.max() >= n_samples):
            raise ValueError(
                f"negative pair indices must lie in [0, {n_samples - 1}]; got "
                f"values from {ij.min()} to {ij.max()}."
            )
        weights = pairs[:, 2] if pairs.shape[1] == 3 else np.ones(len(pairs))
        S = sp.csr_matrix((weights, (ij[:, 0], ij[:, 1])), shape=(n_samples, n_samples))
    if not np.all(np.isfinite(S.data)):
        raise ValueError("negatives contain NaN or infinite weights.")
    if S.nnz and S.data.min() < 0:
        raise ValueError("negatives must have non-negative weights.")
    if np.any(S.diagonal() != 0):
        raise ValueError(
            "negatives contain a self pair (i, i): a sample cannot be its own negative."
        )
    Wdis = S.maximum(S.T).tocsr()
    Wdis.eliminate_zeros()
    Wdis.sort_indices()
    return Wdis
