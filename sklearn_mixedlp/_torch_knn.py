"""Exact k-nearest-neighbour search by inner product with torch.

The rows are L2-normalised, so the inner product is the cosine similarity.
Queries are processed in blocks: one matmul against the index rows (moved to
the device once) and one ``torch.topk`` per block, so the full
``n_queries x n_index`` similarity matrix is never formed. Runs on CUDA, or on
CPU torch as a fallback and test path. torch is imported lazily, so the
package imports without it.
"""

import numbers

import numpy as np

from ._utils import import_optional

# Similarity entries (block rows x index rows) computed per query block.
_BLOCK_ENTRIES = 2**26
# Largest index count whose positions are exact in float32 (tie-breaking key).
_FLOAT32_EXACT_INT = 2**24


def torch_kneighbors(
    index_rows,
    query_rows,
    k,
    *,
    device="cpu",
    exclude_self=False,
    block_rows=None,
    dtype=None,
):
    """The ``k`` index rows of largest inner product with each query row.

    Exact blocked search with torch. Among equal similarities the lower
    index wins, both for which rows are kept and for their order, so the
    result does not depend on the device or on ``block_rows``
    (up to floating-point rounding of the similarities).

    Parameters
    ----------
    index_rows : ndarray of shape (n_index, n_features)
        L2-normalised rows searched, float32 or float64.
    query_rows : ndarray of shape (n_queries, n_features)
        L2-normalised query rows, float32 or float64. With
        ``exclude_self=True`` these must be the index rows themselves, in the
        same order.
    k : int
        Number of neighbours, ``1 <= k <= n_index`` (``n_index - 1`` with
        ``exclude_self=True``).
    device : str or torch.device, default='cpu'
        Where the search runs, e.g. ``'cuda'`` or ``'cuda:1'``.
    exclude_self : bool, default=False
        Whether query row ``r`` is index row ``r`` and must not be its own
        neighbour. ``k + 1`` neighbours are searched and the self index is
        dropped; when an exact duplicate outranks it out of the ``k + 1``,
        the last neighbour is dropped instead.
    block_rows : int or None, default=None
        Query rows per block; default ``max(1, 2**26 // n_index)``, which
        bounds a similarity block to about ``2**26`` entries.
    dtype : {None, 'float32', 'float64'} or torch.dtype, default=None
        Precision of the computation; default the inputs' dtype. The
        returned similarities keep the inputs' dtype.

    Returns
    -------
    sim : ndarray of shape (n_queries, k)
        Inner products, decreasing along each row; float32 for float32
        inputs, float64 otherwise.
    idx : ndarray of shape (n_queries, k)
        int64 indices into ``index_rows``, distinct within each row.

    Raises
    ------
    ValueError
        If ``k`` is out of range, the feature dimensions differ, the inputs
        are not 2-d, ``block_rows`` is not a positive integer, or
        ``exclude_self=True`` with a different number of query and index
        rows.
    ImportError
        If torch is not installed.
    """
    torch = import_optional("torch", "the torch neighbour search")
    same_rows = query_rows is index_rows
    V = _as_float_rows(index_rows, "index_rows")
    Q = V if same_rows else _as_float_rows(query_rows, "query_rows")
    n_index, n_queries = V.shape[0], Q.shape[0]
    if Q.shape[1] != V.shape[1]:
        raise ValueError(
            f"query_rows has {Q.shape[1]} features but index_rows has "
            f"{V.shape[1]}; the feature dimensions must match."
        )
    if exclude_self and n_queries != n_index:
        raise ValueError(
            f"exclude_self=True needs the index rows as queries, but got "
            f"{n_queries} query rows and {n_index} index rows."
        )
    max_k = n_index - 1 if exclude_self else n_index
    if not _is_int(k) or not 1 <= k <= max_k:
        size = f"n_index - 1 = {max_k}" if exclude_self else f"n_index = {max_k}"
        raise ValueError(f"k={k!r} must be an integer with 1 <= k <= {size}.")
    if block_rows is None:
        block_rows = max(1, _BLOCK_ENTRIES // n_index)
    elif not _is_int(block_rows) or block_rows < 1:
        raise ValueError(f"block_rows={block_rows!r} must be a positive integer.")

    out_dtype = np.result_type(V.dtype, Q.dtype)
    device = torch.device(device)
    work_dtype = _torch_dtype(torch, out_dtype if dtype is None else dtype)
    n_search = k + 1 if exclude_self else k

    with torch.inference_mode():
        V_t = _to_device(torch, V, device, work_dtype)  # moved once
        sims = torch.empty((n_queries, k), dtype=work_dtype, device=device)
        idxs = torch.empty((n_queries, k), dtype=torch.int64, device=device)
        for start in range(0, n_queries, block_rows):
            stop = min(start + block_rows, n_queries)
            if same_rows:
                Q_t = V_t[start:stop]
            else:
                Q_t = _to_device(torch, Q[start:stop], device, work_dtype)
            S = Q_t @ V_t.T
            s, i = _top_k(torch, S, n_search)
            del S
            if exclude_self:
                rows = torch.arange(start, stop, device=device)
                s, i = _drop_self(torch, s, i, rows, k)
            sims[start:stop] = s
            idxs[start:stop] = i
        sim = sims.cpu().numpy().astype(out_dtype, copy=False)
        idx = idxs.cpu().numpy()
    return sim, idx


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_float_rows(X, name):
    """``X`` as a C-contiguous 2-d float32 or float64 array."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array, got {X.ndim} dimension(s).")
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(X, dtype=dtype)


def _torch_dtype(torch, dtype):
    """The torch floating dtype named by a numpy dtype-like or torch dtype."""
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype={dtype} must be float32 or float64.")
        return dtype
    names = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
    try:
        return names[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise ValueError(f"dtype={dtype!r} must be float32 or float64.") from None


def _to_device(torch, X, device, dtype):
    """Copy numpy rows to ``device`` as ``dtype`` (no copy for CPU and the
    same dtype)."""
    if not X.flags.writeable:  # torch.from_numpy warns on read-only arrays
        X = X.copy()
    return torch.from_numpy(X).to(device=device, dtype=dtype)


def _top_k(torch, S, k):
    """Values and column indices of the ``k`` largest entries of each row of
    ``S``, sorted by decreasing value; equal values go to the lower index.

    ``torch.topk`` picks arbitrarily among entries tied with the ``k``-th
    value, so the rows where such ties cross the cut are selected again:
    every entry above the cut, then the tied ones of lowest index.
    """
    vals, idx = torch.topk(S, k, dim=1, largest=True, sorted=False)
    cut = vals.min(dim=1, keepdim=True).values
    at_cut = S == cut
    tied = at_cut.sum(dim=1) > (vals == cut).sum(dim=1)
    if tied.any():
        rows = tied.nonzero().squeeze(1)
        n = S.shape[1]
        key_dtype = S.dtype if n <= _FLOAT32_EXACT_INT else torch.float64
        # Key: +inf above the cut, -column at the cut, -inf below: the
        # top k are the entries above the cut, then the lowest tied columns.
        position = -torch.arange(n, device=S.device, dtype=key_dtype)
        S_tied = S[rows]
        key = position.expand(rows.shape[0], n).masked_fill(~at_cut[rows], -np.inf)
        key = key.masked_fill(S_tied > cut[rows], np.inf)
        idx[rows] = torch.topk(key, k, dim=1, largest=True, sorted=False).indices
        vals[rows] = torch.gather(S_tied, 1, idx[rows])
    # Order by (-value, index): sort by index, then stably by value.
    idx, order = torch.sort(idx, dim=1)
    vals = torch.gather(vals, 1, order)
    vals, order = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, torch.gather(idx, 1, order)


def _drop_self(torch, sim, idx, rows, k):
    """Remove each query's own index from its ``k + 1`` neighbours.

    Query ``j`` of the block is index row ``rows[j]``. Its self entry is
    dropped, or the last neighbour when an exact duplicate outranked self.
    """
    is_self = idx == rows[:, None]
    drop = torch.where(
        is_self.any(dim=1),
        is_self.to(torch.int8).argmax(dim=1),
        torch.full_like(rows, k),
    )
    keep = torch.ones_like(is_self)
    keep[torch.arange(idx.shape[0], device=idx.device), drop] = False
    return sim[keep].view(-1, k), idx[keep].view(-1, k)
