"""PyTorch losses for metric learning from propagated (pseudo-)labels.

This module requires the optional dependency ``torch`` and is therefore not
imported by ``sklearn_mixedlp/__init__.py``; import it explicitly::

    from sklearn_mixedlp.losses import ProxyLoss
"""

import numbers

from ._utils import import_optional

torch = import_optional("torch", "sklearn_mixedlp.losses.ProxyLoss")
nn = torch.nn
F = torch.nn.functional

__all__ = ["ProxyLoss"]


class ProxyLoss(nn.Module):
    r"""Confidence-weighted proxy loss (Zhuang & Moulin, CVPR 2023, eqs. 26-29).

    Every class :math:`c` owns a learnable proxy :math:`p_c`. With
    :math:`z_i` the L2-normalised embedding of sample :math:`i`, :math:`y_i`
    its (pseudo-)label, :math:`\omega_i \ge 0` its confidence,
    :math:`\epsilon` the ``scale`` and :math:`b` the ``margin``, the loss is

    .. math::

        L = \frac{1}{C} \sum_i \omega_i
            \left( L^{+}(z_i) + L^{-}(z_i) \right),

        L^{+}(z_i) = \log\left(1 + \exp\left(
            -\epsilon \, (z_i \cdot p_{y_i} - b) \right)\right),

        L^{-}(z_i) = \sum_{c \ne y_i} \log\left(1 + \exp\left(
            \epsilon \, (z_i \cdot p_c + b) \right)\right),

    where :math:`C` is ``n_classes`` and the proxies are L2-normalised in
    :meth:`forward`, so that :math:`z_i \cdot p_c` is a cosine similarity.
    Embeddings are normalised after a division of each row by its largest
    absolute entry, so that rows of any magnitude give unit vectors (a
    plain float32 norm overflows above about 1e19).
    :math:`L^{+}` pulls an embedding towards the proxy of its class until the
    cosine exceeds :math:`b`; :math:`L^{-}` pushes it away from every other
    proxy until the cosine is below :math:`-b`. Each
    :math:`\log(1 + \exp(x))` is evaluated with
    :func:`torch.nn.functional.softplus`, which does not overflow for large
    :math:`\epsilon`.

    Note that the sum runs over the samples of the batch and is divided by
    the number of classes, not by the batch size (as in the paper), so the
    loss grows with the batch size.

    Parameters
    ----------
    n_classes : int
        Number of classes :math:`C` (one proxy per class), at least 1.
    embedding_dim : int, default=64
        Dimension of the embeddings and of the proxies.
    scale : float, default=32.0
        Positive scale (inverse temperature) :math:`\epsilon`.
    margin : float, default=0.1
        Margin :math:`b` on the cosine similarities.

    Attributes
    ----------
    proxies : torch.nn.Parameter of shape (n_classes, embedding_dim)
        The unnormalised learnable proxies, initialised with
        :func:`torch.nn.init.kaiming_normal_` from torch's global generator
        (call :func:`torch.manual_seed` first for reproducibility; see
        :meth:`reset_parameters`).

    References
    ----------
    .. [1] Zhuang, D. and Moulin, P. "Deep Semi-Supervised Metric Learning
       with Mixed Label Propagation", CVPR 2023.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mixedlp.losses import ProxyLoss
    >>> _ = torch.manual_seed(0)
    >>> criterion = ProxyLoss(n_classes=3, embedding_dim=8)
    >>> embeddings = torch.randn(5, 8, requires_grad=True)
    >>> labels = torch.tensor([0, 1, 2, 1, 0])
    >>> confidence = torch.tensor([1.0, 0.5, 1.0, 0.0, 0.9])
    >>> loss = criterion(embeddings, labels, sample_weight=confidence)
    >>> loss.backward()
    >>> loss.ndim, embeddings.grad.shape
    (0, torch.Size([5, 8]))
    """

    def __init__(self, n_classes, embedding_dim=64, *, scale=32.0, margin=0.1):
        super().__init__()
        self.n_classes = _check_positive_int(n_classes, "n_classes")
        self.embedding_dim = _check_positive_int(embedding_dim, "embedding_dim")
        if (
            not isinstance(scale, numbers.Real)
            or isinstance(scale, bool)
            or not (0 < float(scale) < float("inf"))
        ):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}.")
        if (
            not isinstance(margin, numbers.Real)
            or isinstance(margin, bool)
            or not abs(float(margin)) < float("inf")
        ):
            raise ValueError(f"margin must be a finite number, got {margin!r}.")
        self.scale = float(scale)
        self.margin = float(margin)
        self.proxies = nn.Parameter(torch.empty(self.n_classes, self.embedding_dim))
        self.reset_parameters()

    def reset_parameters(self, generator=None):
        """Re-initialise the proxies with Kaiming-normal values.

        Parameters
        ----------
        generator : torch.Generator, default=None
            Random generator to draw from; torch's global generator when
            None.
        """
        # ``generator`` is only passed when given: torch < 2.2 lacks it.
        kwargs = {} if generator is None else {"generator": generator}
        with torch.no_grad():
            nn.init.kaiming_normal_(
                self.proxies, mode="fan_out", nonlinearity="linear", **kwargs
            )

    def normalized_proxies(self):
        """Return the L2-normalised proxies :math:`p_c` (differentiable).

        Returns
        -------
        proxies : torch.Tensor of shape (n_classes, embedding_dim)
        """
        return F.normalize(self.proxies, p=2, dim=1)

    def forward(self, embeddings, labels, sample_weight=None):
        """Compute the loss of a batch.

        Parameters
        ----------
        embeddings : torch.Tensor of shape (n_samples, embedding_dim)
            Floating-point embeddings; they are L2-normalised here.
        labels : torch.Tensor or array-like of int of shape (n_samples,)
            Class of each sample, in ``[0, n_classes)``.
        sample_weight : torch.Tensor or array-like of shape (n_samples,), \
                default=None
            Non-negative confidence :math:`\\omega_i` of each sample; ones
            when None. A zero weight removes the sample from the loss.

        Returns
        -------
        loss : torch.Tensor
            0-dimensional tensor, in the common dtype of ``embeddings`` and
            the proxies. A batch of zero samples gives 0.

        Raises
        ------
        ValueError
            If a shape does not match, a label is out of range or not an
            integer, or a weight is negative or not finite.
        """
        embeddings = self._check_embeddings(embeddings)
        n_samples = embeddings.shape[0]
        device = embeddings.device
        labels = _check_labels(labels, n_samples, self.n_classes, device)

        dtype = torch.promote_types(embeddings.dtype, self.proxies.dtype)
        z = _normalize_rows(embeddings.to(dtype))
        p = F.normalize(self.proxies.to(device=device, dtype=dtype), p=2, dim=1)
        weight = _check_weights(sample_weight, n_samples, dtype, device)

        cos = z @ p.T  # (n_samples, n_classes)
        positive = F.one_hot(labels, self.n_classes).to(torch.bool)
        cos_pos = cos.gather(1, labels.unsqueeze(1)).squeeze(1)
        l_plus = F.softplus(-self.scale * (cos_pos - self.margin))
        l_minus_all = F.softplus(self.scale * (cos + self.margin))
        l_minus = torch.where(positive, torch.zeros_like(l_minus_all), l_minus_all).sum(
            1
        )
        return (weight * (l_plus + l_minus)).sum() / self.n_classes

    def extra_repr(self):
        return (
            f"n_classes={self.n_classes}, embedding_dim={self.embedding_dim}, "
            f"scale={self.scale}, margin={self.margin}"
        )

    def _check_embeddings(self, embeddings):
        if not isinstance(embeddings, torch.Tensor):
            embeddings = torch.as_tensor(
                embeddings, dtype=self.proxies.dtype, device=self.proxies.device
            )
        if not embeddings.is_floating_point():
            raise ValueError(
                f"embeddings must be a floating-point tensor, got dtype "
                f"{embeddings.dtype}."
            )
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings must have shape (n_samples, {self.embedding_dim}), "
                f"got {tuple(embeddings.shape)}."
            )
        return embeddings


def _normalize_rows(z):
    """L2-normalise the rows of ``z`` without overflow (zero rows stay 0)."""
    peak = z.detach().abs().amax(dim=1, keepdim=True)
    z = z / torch.where(peak > 0, peak, torch.ones_like(peak))
    return F.normalize(z, p=2, dim=1)


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_labels(labels, n_samples, n_classes, device):
    labels = torch.as_tensor(labels, device=device)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}.")
    if labels.shape != (n_samples,):
        raise ValueError(
            f"labels must have shape ({n_samples},) to match embeddings, got "
            f"{tuple(labels.shape)}."
        )
    labels = labels.to(torch.long)
    if n_samples and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes}), got values in "
            f"[{int(labels.min())}, {int(labels.max())}]."
        )
    return labels


def _check_weights(sample_weight, n_samples, dtype, device):
    if sample_weight is None:
        return torch.ones(n_samples, dtype=dtype, device=device)
    weight = torch.as_tensor(sample_weight, device=device)
    if weight.is_complex():
        raise ValueError("sample_weight must be real.")
    weight = weight.to(dtype)
    if weight.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) to match embeddings, "
            f"got {tuple(weight.shape)}."
        )
    if n_samples:
        detached = weight.detach()
        if not bool(torch.isfinite(detached).all()):
            raise ValueError("sample_weight must be finite.")
        if bool((detached < 0).any()):
            raise ValueError("sample_weight must be non-negative.")
    return weight
