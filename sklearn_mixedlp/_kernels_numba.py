"""The numba kernels of :mod:`sklearn_mixedlp._kernels` (imported only
when numba is installed; see there)."""

import numba
import numpy as np

jit = numba.njit(nogil=True, cache=True, fastmath=True, boundscheck=False)

# The loops over the C columns are written so that LLVM vectorises
# them (2-d indexing, a separate accumulator row; checked with
# inspect_asm): four stored entries per step quarter the accumulator's
# loads and stores, which otherwise chain every step through memory.
@jit
def _row_product(indptr, indices, data, X, i, acc):
    """``acc = (A @ X)[i]``."""
    n_cols = X.shape[1]
    for c in range(n_cols):
        acc[c] = 0.0
    p, stop = indptr[i], indptr[i + 1]
    while p + 4 <= stop:
        a0, a1, a2, a3 = data[p], data[p + 1], data[p + 2], data[p + 3]
        j0, j1 = indices[p], indices[p + 1]
        j2, j3 = indices[p + 2], indices[p + 3]
        for c in range(n_cols):
            acc[c] += (a0 * X[j0, c] + a1 * X[j1, c]) + (
                a2 * X[j2, c] + a3 * X[j3, c]
            )
        p += 4
    while p < stop:
        a, j = data[p], indices[p]
        for c in range(n_cols):
            acc[c] += a * X[j, c]
        p += 1

@jit
def csr_matmat(indptr, indices, data, X, out, bounds, first, last, dots, want):
    """Rows of chunks ``first .. last - 1`` (``bounds``) of ``A @ X``
    into ``out``; with ``want``, ``dots[chunk, c] = sum_i X_ic out_ic``
    over the chunk's rows (float64)."""
    n_cols = X.shape[1]
    acc = np.empty(n_cols, dtype=out.dtype)
    for chunk in range(first, last):
        for c in range(n_cols):
            dots[chunk, c] = 0.0
        for i in range(bounds[chunk], bounds[chunk + 1]):
            _row_product(indptr, indices, data, X, i, acc)
            for c in range(n_cols):
                out[i, c] = acc[c]
            if want:
                for c in range(n_cols):
                    dots[chunk, c] += np.float64(X[i, c]) * np.float64(acc[c])

@jit
def csr_residual(indptr, indices, data, X, slot, values, R, bounds, first, last, sq):
    """``R = B - A @ X`` on chunks ``first .. last - 1`` (computed in
    ``X``'s precision, stored in ``R``'s), and ``sq[chunk, c] = sum_i
    R_ic^2`` in float64. Row ``i`` of ``B`` is ``values[slot[i]]``, or
    zero where ``slot[i] < 0``."""
    n_cols = X.shape[1]
    acc = np.empty(n_cols, dtype=X.dtype)
    for chunk in range(first, last):
        for c in range(n_cols):
            sq[chunk, c] = 0.0
        for i in range(bounds[chunk], bounds[chunk + 1]):
            _row_product(indptr, indices, data, X, i, acc)
            _store_residual(acc, slot, values, R, sq, i, chunk)


@jit
def _store_residual(acc, slot, values, R, sq, i, chunk):
    """``R[i] = B[i] - acc`` (row ``i`` of ``B`` is ``values[slot[i]]``, or
    zero where ``slot[i] < 0``) and its squares added to ``sq[chunk]``."""
    n_cols = acc.shape[0]
    k = slot[i]
    if k >= 0:
        for c in range(n_cols):
            acc[c] = values[k, c] - acc[c]
    else:
        for c in range(n_cols):
            acc[c] = -acc[c]
    for c in range(n_cols):
        R[i, c] = acc[c]
        sq[chunk, c] += np.float64(acc[c]) * np.float64(acc[c])

@jit
def graph_residual(
    indptr, indices, w, share, beta, scale, sign, diagonal, X, slot, values, R,
    bounds, first, last, sq,
):
    """:func:`csr_residual` for the system ``A = diag(diagonal) + sign D_s
    M D_s`` (``D_s = diag(scale)``) of a graph stored without its diagonal,
    read from the graph instead of a copy of ``A``: ``M``'s entries are the
    affinities ``w``, or with a nonempty ``share`` the cut affinities
    ``max(w (1 - beta share), 0)`` of :func:`cut_degrees`. Each entry of
    ``A`` is formed as :func:`scaled_offdiagonal` forms it, in float64."""
    n_cols = X.shape[1]
    cut = share.size > 0
    acc = np.empty(n_cols, dtype=np.float64)
    for chunk in range(first, last):
        for c in range(n_cols):
            sq[chunk, c] = 0.0
        for i in range(bounds[chunk], bounds[chunk + 1]):
            s_i = sign * scale[i]
            d = diagonal[i]
            for c in range(n_cols):
                acc[c] = d * X[i, c]
            for p in range(indptr[i], indptr[i + 1]):
                v = w[p]
                if cut:
                    v = w[p] * (1.0 - beta * np.float64(share[p]))
                    if v <= 0.0:
                        v = 0.0
                j = indices[p]
                a = s_i * v * scale[j]
                for c in range(n_cols):
                    acc[c] += a * X[j, c]
            _store_residual(acc, slot, values, R, sq, i, chunk)

@jit
def cg_step(X, R, P, AP, alpha, inv_diag, bounds, first, last, rr, rz):
    """``X += alpha P``, ``R -= alpha AP`` and the per-chunk sums
    ``rr = sum R^2``, ``rz = sum R^2 / diag`` of the new ``R``."""
    n_cols = X.shape[1]
    for chunk in range(first, last):
        for c in range(n_cols):
            rr[chunk, c] = 0.0
            rz[chunk, c] = 0.0
        for i in range(bounds[chunk], bounds[chunk + 1]):
            d = np.float64(inv_diag[i])
            for c in range(n_cols):
                X[i, c] += alpha[c] * P[i, c]
                R[i, c] -= alpha[c] * AP[i, c]
            for c in range(n_cols):
                v = np.float64(R[i, c])
                rr[chunk, c] += v * v
                rz[chunk, c] += v * v * d

@jit
def cg_norms(R, inv_diag, bounds, first, last, rr, rz):
    """The sums of :func:`cg_step` for ``R`` as it is."""
    n_cols = R.shape[1]
    for chunk in range(first, last):
        for c in range(n_cols):
            rr[chunk, c] = 0.0
            rz[chunk, c] = 0.0
        for i in range(bounds[chunk], bounds[chunk + 1]):
            d = np.float64(inv_diag[i])
            for c in range(n_cols):
                v = np.float64(R[i, c])
                rr[chunk, c] += v * v
                rz[chunk, c] += v * v * d

@jit
def cg_direction(P, R, beta, inv_diag, start, stop):
    """``P = R / diag + beta P`` on rows ``start .. stop - 1``."""
    n_cols = P.shape[1]
    for i in range(start, stop):
        d = inv_diag[i]
        for c in range(n_cols):
            P[i, c] = R[i, c] * d + beta[c] * P[i, c]

@jit
def cg_direction_coarse(P, R, beta, inv_diag, Y, agg, w, start, stop):
    """``P = R / diag + beta P + w_i Y[agg_i]`` on rows ``start .. stop -
    1``: the direction of a two-level preconditioner, its prolongation
    fused."""
    n_cols = P.shape[1]
    for i in range(start, stop):
        d = inv_diag[i]
        a = agg[i]
        wi = w[i]
        for c in range(n_cols):
            P[i, c] = R[i, c] * d + beta[c] * P[i, c] + wi * Y[a, c]


@jit
def coarse_operator(indptr, indices, data, agg, w, out):
    """``out[agg_i, agg_j] += w_i a_ij w_j`` over the stored entries of a
    CSR matrix (float64): its Galerkin coarse matrix ``Q^T A Q`` for
    aggregates ``agg`` and weights ``w``, in one pass, rows in order."""
    for i in range(indptr.size - 1):
        a, wi = agg[i], w[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            out[a, agg[j]] += wi * np.float64(data[p]) * w[j]


@jit
def coarse_restrict(R, agg, w, start, stop, C):
    """``C[agg_i] += w_i R[i]`` for the rows ``i`` in ``start .. stop - 1``,
    in row order (float64; ``C`` zeroed by the caller): ``R`` is read
    once, in order, and ``C`` (one row per aggregate) stays in cache."""
    n_cols = R.shape[1]
    for i in range(start, stop):
        a = agg[i]
        wi = w[i]
        for c in range(n_cols):
            C[a, c] += wi * np.float64(R[i, c])


@jit
def edge_cosines(indptr, indices, U, out, start, stop):
    """``out[p] = 1 - <U_i, U_j>`` (float64) for the stored entries ``p``
    of rows ``start .. stop - 1`` (``j = indices[p]``)."""
    n_cols = U.shape[1]
    for i in range(start, stop):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            s = 0.0
            for c in range(n_cols):
                s += np.float64(U[i, c]) * np.float64(U[j, c])
            out[p] = 1.0 - s


@jit
def agreement_values(indptr, indices, w, Pn, Qn, use_q, view_weight, product,
                     temperature, weighted, out, start, stop, mirror):
    """``out[p] = w[p] (1 - exp(-e / temperature))`` for the stored entries
    ``p`` of rows ``start .. stop - 1`` (without the factor ``w[p]`` unless
    ``weighted``), with ``e`` the views' disagreement of
    :func:`_agreement_share` from ``d = 1 - <Pn_i, Pn_j>`` and ``q = 1 -
    <Qn_i, Qn_j>``; the dot products in float64. With the
    ``mirror`` of each entry (:func:`mirror_positions`; an empty array:
    none) each edge is computed once, from its upper entry, and written to
    both."""
    n_p = Pn.shape[1]
    for i in range(start, stop):
        for p in range(indptr[i], indptr[i + 1]):
            m = mirror[p] if mirror.shape[0] else -1
            if m == _WRITTEN_FROM_ITS_MIRROR:
                continue
            j = indices[p]
            s = 0.0
            for c in range(n_p):
                s += np.float64(Pn[i, c]) * np.float64(Pn[j, c])
            share = _agreement_share(
                1.0 - s, Qn, i, j, use_q, view_weight, product, temperature
            )
            _store_share(out, w, p, m, share, weighted)


# the mirror of a lower entry whose upper one is stored (its value is
# written from there)
_WRITTEN_FROM_ITS_MIRROR = -2


@jit
def mirror_positions(indptr, indices, out):
    """Where the value of each stored entry goes besides itself, for the
    agreement kernels, on a CSR pattern with sorted indices: an edge's two
    entries get one value, computed from the upper one. ``out[p]`` is, for
    an upper entry ``(i, j)`` (``j > i``), the position of the stored
    ``(j, i)``; for that lower entry :data:`_WRITTEN_FROM_ITS_MIRROR`; -1
    for a diagonal entry and an entry whose mirror is not stored (it is
    computed from its own row). Threads over rows then never write the
    same entry.

    One pass in row order: the lower entries of row ``j`` (columns below
    ``j``, in increasing order) are met in the order of their columns as
    the rows ``i < j`` are visited, so a cursor per row finds each mirror
    without a search (stored lower entries without an upper one are
    stepped over)."""
    n = indptr.shape[0] - 1
    cursor = indptr[:-1].copy()
    for p in range(out.shape[0]):
        out[p] = -1
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j <= i:
                continue
            q, end = cursor[j], indptr[j + 1]
            while q < end and indices[q] < i:
                q += 1
            if q < end and indices[q] == i:
                out[p] = q
                out[q] = _WRITTEN_FROM_ITS_MIRROR
                q += 1
            cursor[j] = q


@jit
def _store_share(out, w, p, m, share, weighted):
    """``out[p]`` (and ``out[m]`` for ``m >= 0``) = the share, times the
    entry's affinity when ``weighted``."""
    out[p] = w[p] * share if weighted else share
    if m >= 0:
        out[m] = w[m] * share if weighted else share


@jit
def _agreement_share(d, Qn, i, j, use_q, view_weight, product, temperature):
    """``1 - exp(-e / temperature)`` for the disagreement ``e`` of the views
    ``d`` and ``q = 1 - <Qn_i, Qn_j>`` (in float64): without ``use_q``
    ``e = max(d, 0)``; with it ``e = (1 + view_weight) sqrt(max(d, 0)
    max(q, 0))`` when ``product``, else ``max(d + view_weight q, 0)``."""
    if use_q:
        s = 0.0
        for c in range(Qn.shape[1]):
            s += np.float64(Qn[i, c]) * np.float64(Qn[j, c])
        q = 1.0 - s
        if product:
            d = (1.0 + view_weight) * np.sqrt(max(d, 0.0) * max(q, 0.0))
        else:
            d += view_weight * q
    if d < 0.0:
        d = 0.0
    return -np.expm1(-d / temperature)


@jit
def _clipped_dot(G, i, j, weight):
    """``sum_c max(G_ic, 0) max(G_jc, 0) weight_c`` in float64."""
    s = 0.0
    for c in range(G.shape[1]):
        s += max(np.float64(G[i, c]), 0.0) * max(np.float64(G[j, c]), 0.0) * weight[c]
    return s


@jit
def _clipped_uniform_dot(G, i, weight):
    """``sum_c max(G_ic, 0) weight_c`` in float64."""
    s = 0.0
    for c in range(G.shape[1]):
        s += max(np.float64(G[i, c]), 0.0) * weight[c]
    return s


@jit
def distribution_dot(G, factor2, uniform_factor, uniform2, scale, i, j):
    """``<Pn_i, Pn_j>`` for the unit rows ``Pn_i = scale_i max(G_i, 0) *
    factor`` (the uniform unit row ``u`` where ``scale_i = 0``), from
    ``factor2 = factor^2``, ``uniform_factor = u * factor`` and
    ``uniform2 = <u, u>``. The rows are taken in the order ``min(i, j),
    max(i, j)``: fastmath may reassociate the products, and ``(i, j)``
    must give exactly what ``(j, i)`` gives."""
    if i > j:
        i, j = j, i
    si, sj = scale[i], scale[j]
    if si > 0.0 and sj > 0.0:
        return si * sj * _clipped_dot(G, i, j, factor2)
    if si > 0.0:
        return si * _clipped_uniform_dot(G, i, uniform_factor)
    if sj > 0.0:
        return sj * _clipped_uniform_dot(G, j, uniform_factor)
    return uniform2


@jit
def agreement_values_from(indptr, indices, w, G, factor2, uniform_factor, uniform2,
                          scale, Qn, use_q, view_weight, product, temperature, weighted,
                          out, start, stop, mirror):
    """:func:`agreement_values` with the unit rows ``Pn`` of the class
    distributions read from the propagated scores ``G`` (see
    :func:`distribution_dot`): no ``n x C`` block of unit rows."""
    for i in range(start, stop):
        for p in range(indptr[i], indptr[i + 1]):
            m = mirror[p] if mirror.shape[0] else -1
            if m == _WRITTEN_FROM_ITS_MIRROR:
                continue
            j = indices[p]
            d = 1.0 - distribution_dot(G, factor2, uniform_factor, uniform2, scale, i, j)
            share = _agreement_share(d, Qn, i, j, use_q, view_weight, product, temperature)
            _store_share(out, w, p, m, share, weighted)


@jit
def cut_degrees(indptr, w, share, beta, cut, degree, start, stop):
    """``cut = max(w (1 - beta share), 0)`` on the stored entries of rows
    ``start .. stop - 1`` and the row sums ``degree`` of ``cut``; returns
    the number of entries cut to 0 from a positive ``w``."""
    removed = 0
    for i in range(start, stop):
        total = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            v = w[p] * (1.0 - beta * np.float64(share[p]))
            if v <= 0.0:
                v = 0.0
                if w[p] > 0.0:
                    removed += 1
            cut[p] = v
            total += v
        degree[i] = total
    return removed


@jit
def scaled_offdiagonal(indptr, indices, values, scale, sign, a_data, start, stop):
    """The off-diagonal entries of a system on a graph's pattern, written
    into ``a_data``, the data of the graph's pattern with each row's
    diagonal entry inserted in column order (entry ``p`` of row ``i``, of
    column ``j``, sits at ``p + i + (j > i)`` there): ``sign * values[p] *
    scale[i] * scale[j]``."""
    for i in range(start, stop):
        s_i = sign * scale[i]
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            q = p + i + 1 if j > i else p + i
            a_data[q] = s_i * values[p] * scale[j]


@jit
def pattern_with_diagonal(indptr, indices, a_indices, diag_pos, start, stop):
    """The column indices of a graph's pattern with each row's diagonal
    entry inserted in column order (see :func:`scaled_offdiagonal`), and
    the position of each diagonal entry, for rows ``start .. stop - 1``."""
    for i in range(start, stop):
        q = indptr[i] + i
        placed = False
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j > i and not placed:
                a_indices[q] = i
                diag_pos[i] = q
                q += 1
                placed = True
            a_indices[q] = j
            q += 1
        if not placed:
            a_indices[q] = i
            diag_pos[i] = q


@jit
def gather_rows_in_place(G, source, done):
    """``G = G[source]`` in place, for a permutation ``source``: each cycle
    of the permutation is followed with one row of scratch; ``done`` (all
    False on entry) marks the rows already written."""
    tmp = np.empty(G.shape[1], dtype=G.dtype)
    for start in range(G.shape[0]):
        if done[start]:
            continue
        tmp[:] = G[start]
        r = start
        while True:
            done[r] = True
            src = source[r]
            if src == start:
                G[r] = tmp
                break
            G[r] = G[src]
            r = src


# -- inverted-file neighbour search -----------------------------------------
# Each query row keeps its best ``k`` candidates in a binary min-heap (row
# ``q`` of ``sims`` / ``nbrs``): the root is the worst kept candidate under
# the order "larger similarity first, then smaller index", so the kept set is
# the top ``k`` of every candidate offered, whatever the order of the offers.


@jit
def _worse(s1, i1, s2, i2):
    """Whether candidate ``(s1, i1)`` ranks below ``(s2, i2)``."""
    return s1 < s2 or (s1 == s2 and i1 > i2)


@jit
def _sift_down(sims, nbrs, q, size, s, c):
    """Put candidate ``(s, c)`` at the root of row ``q``'s heap of ``size``
    entries (the old root is dropped) and sift it down to its place."""
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _worse(
            sims[q, child + 1], nbrs[q, child + 1], sims[q, child], nbrs[q, child]
        ):
            child += 1
        if not _worse(sims[q, child], nbrs[q, child], s, c):
            break
        sims[q, pos], nbrs[q, pos] = sims[q, child], nbrs[q, child]
        pos = child
    sims[q, pos], nbrs[q, pos] = s, c


@jit
def heap_offer(D, queries, ids, sims, nbrs, exclude_self):
    """Offer the block of similarities ``D`` (``D[r, j]`` between query
    ``queries[r]`` and candidate ``ids[j]``) to the queries' heaps; with
    ``exclude_self`` a query never keeps its own index."""
    k = sims.shape[1]
    for r in range(D.shape[0]):
        q = queries[r]
        root_s, root_i = sims[q, 0], nbrs[q, 0]
        for j in range(D.shape[1]):
            s = D[r, j]
            if s < root_s:
                continue
            c = ids[j]
            if not _worse(root_s, root_i, s, c) or (exclude_self and c == q):
                continue
            _sift_down(sims, nbrs, q, k, s, c)
            root_s, root_i = sims[q, 0], nbrs[q, 0]


@jit
def heap_sort_rows(sims, nbrs, start, stop):
    """Sort heap rows ``start .. stop - 1`` in place, best candidate first
    (larger similarity, then smaller index): the root (the worst kept
    candidate) moves behind a heap one shorter, repeatedly."""
    k = sims.shape[1]
    for q in range(start, stop):
        for end in range(k - 1, 0, -1):
            s, c = sims[q, end], nbrs[q, end]
            sims[q, end], nbrs[q, end] = sims[q, 0], nbrs[q, 0]
            _sift_down(sims, nbrs, q, end, s, c)


@jit
def bucket_rows(lists, n_lists, n_groups, rows):
    """Group the rows of ``lists`` (n x p list numbers) by (row group, list),
    rows in increasing order within each bucket (a counting sort). Row
    ``i`` belongs to group ``i * n_groups // n``; bucket ``g * n_lists +
    l`` ends up in ``rows[ptr[b]:ptr[b + 1]]``. Returns ``ptr``."""
    n, p = lists.shape
    n_buckets = n_groups * n_lists
    ptr = np.zeros(n_buckets + 1, dtype=np.int64)
    for i in range(n):
        offset = (i * n_groups // n) * n_lists + 1
        for a in range(p):
            ptr[offset + lists[i, a]] += 1
    for b in range(n_buckets):
        ptr[b + 1] += ptr[b]
    fill = ptr[:-1].copy()
    for i in range(n):
        offset = (i * n_groups // n) * n_lists
        for a in range(p):
            b = offset + lists[i, a]
            rows[fill[b]] = i
            fill[b] += 1
    return ptr


# -- sparse graph assembly ---------------------------------------------------


@jit
def transpose_into(indptr, indices, data, t_indptr, t_indices, t_data):
    """The transpose of a CSR matrix into the CSR arrays ``t_*``
    (``t_indptr`` given: the column counts, cumulated): a counting sort, so
    each row of the transpose comes out in increasing column order."""
    fill = t_indptr[:-1].copy()
    for i in range(indptr.size - 1):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            q = fill[j]
            t_indices[q] = i
            t_data[q] = data[p]
            fill[j] = q + 1


@jit
def add_transpose_rows(indptr, indices, data, t_indptr, t_indices, t_data,
                       out_indices, out_data, out_len, start, stop):
    """Rows ``start .. stop - 1`` of ``A + A^T`` (``A`` in CSR, any column
    order; ``A^T`` in CSR with sorted rows) with sorted column indices,
    duplicates summed, the diagonal and zero sums dropped. Row ``i`` is
    written from ``indptr[i] + t_indptr[i]`` on; ``out_len[i]`` is its
    length."""
    for i in range(start, stop):
        a0, a1 = indptr[i], indptr[i + 1]
        b, b1 = t_indptr[i], t_indptr[i + 1]
        order = np.argsort(indices[a0:a1], kind="mergesort")
        q0 = a0 + b
        q = q0
        a = 0
        while a < a1 - a0 or b < b1:
            if b >= b1 or (a < a1 - a0 and indices[a0 + order[a]] <= t_indices[b]):
                j = indices[a0 + order[a]]
                v = data[a0 + order[a]]
                a += 1
            else:
                j = t_indices[b]
                v = t_data[b]
                b += 1
            if q > q0 and out_indices[q - 1] == j:
                out_data[q - 1] += v
            else:
                out_indices[q] = j
                out_data[q] = v
                q += 1
        # drop the diagonal and the zero sums
        kept = q0
        for p in range(q0, q):
            if out_indices[p] != i and out_data[p] != 0:
                out_indices[kept] = out_indices[p]
                out_data[kept] = out_data[p]
                kept += 1
        out_len[i] = kept - q0


@jit
def compact_rows(src_start, lengths, indices, data, out_indptr, out_indices, out_data,
                 start, stop):
    """Copy rows ``start .. stop - 1`` (row ``i``: ``lengths[i]`` entries
    from ``src_start[i]``) to their places ``out_indptr[i]`` in the
    compacted arrays."""
    for i in range(start, stop):
        s, o = src_start[i], out_indptr[i]
        for p in range(lengths[i]):
            out_indices[o + p] = indices[s + p]
            out_data[o + p] = data[s + p]


@jit
def permuted_rows(indptr, indices, data, values, perm, inverse, out_indptr, out_indices,
                  out_data, out_values, start, stop):
    """Rows ``start .. stop - 1`` of ``M[perm][:, perm]``: row ``r`` is row
    ``perm[r]`` of ``M`` with its columns renumbered by ``inverse`` (the
    inverse permutation) and sorted; ``values`` (an empty array, or one
    value per stored entry of ``M``) move with the entries."""
    moved = values.shape[0] > 0
    for r in range(start, stop):
        i = perm[r]
        lo, hi = indptr[i], indptr[i + 1]
        cols = np.empty(hi - lo, dtype=out_indices.dtype)
        for p in range(lo, hi):
            cols[p - lo] = inverse[indices[p]]
        order = np.argsort(cols, kind="mergesort")
        o = out_indptr[r]
        for p in range(hi - lo):
            out_indices[o + p] = cols[order[p]]
            out_data[o + p] = data[lo + order[p]]
            if moved:
                out_values[o + p] = values[lo + order[p]]
