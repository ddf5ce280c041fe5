"""What a trained run says about every file: its probabilities and its embedding.

One pass per file through the run's model with two outputs: the logits (softmax at the
run's temperature gives the calibrated probabilities, as predict) and the layer under fc8
(fc7's activations, averaged over positions when the input is larger than 224 px), the
network's own description of the image. Embeddings find near duplicates a pixel hash
misses (crops, small rotations, colour changes); probabilities find likely wrong labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastfood import scores

#: Cosine similarity of centred embeddings from which two images count as near duplicates.
#: How alike two different photos look depends on the model: on 5,663 Food-101 photos and a
#: weak from-scratch run (38 % top-1), the pHash near duplicates had cosines of 0.957 to
#: 1.0, while 127 photos had a different photo above 0.98 and 6 above 0.99. So 0.99: a
#: link the hash missed is rare and worth a look; a stronger (fine-tuned) model separates
#: better and can be given a lower --embedding-similarity.
EMBEDDING_SIMILARITY = 0.99
#: More pairs than this many per image means the threshold is too low for this model.
MAX_PAIRS_PER_IMAGE = 20


@dataclass(frozen=True)
class NetworkView:
    """Index-aligned with `kept` (indices into the files asked for)."""

    kept: np.ndarray  # int64 [n]
    probs: np.ndarray  # float64 [n, C], at the run's temperature
    embeddings: np.ndarray  # float32 [n, D]
    skipped: tuple[tuple[str, str], ...]
    temperature: float


def embedding_layer(model: Any) -> Any:
    """The layer whose output fc8 reads: global_pool when fc6 slid over pool5, else fc7."""
    names = [layer.name for layer in model.layers]
    return model.get_layer("global_pool" if "global_pool" in names else "fc7")


def look(model: Any, image_size: int, temperature: float, files: Sequence[str], *,
         batch_size: int, loader: str = "auto", exif: bool = False) -> NetworkView:
    import keras
    import tensorflow as tf

    from fastfood.inference.batches import Batch, decode_batches

    both = keras.Model(model.inputs, [embedding_layer(model).output, model.output])
    spec = tf.TensorSpec([None, image_size, image_size, 3], tf.uint8)
    forward = tf.function(lambda images: both(images, training=False), input_signature=[spec])
    parts: list[tuple[tuple[int, ...], np.ndarray, np.ndarray]] = []
    failures: list[tuple[int, str]] = []
    for item in decode_batches(files, image_size=image_size, batch_size=batch_size, kind=loader,
                               exif=exif):
        if not isinstance(item, Batch):
            failures.append((item.index, item.reason))
            continue
        emb, logits = forward(item.images)
        parts.append((item.indices, np.asarray(emb, np.float32), np.asarray(logits)))
    parts.sort(key=lambda p: p[0][0])
    kept = np.asarray([i for p in parts for i in p[0]], dtype=np.int64)
    if parts:
        embeddings = np.concatenate([p[1] for p in parts])
        probs = scores.softmax(np.concatenate([p[2] for p in parts]), temperature)
    else:
        embeddings, probs = np.zeros((0, 0), np.float32), np.zeros((0, 0))
    return NetworkView(kept, probs, embeddings,
                       tuple((files[i], r) for i, r in sorted(failures)), float(temperature))


def similar_pairs(embeddings: np.ndarray, threshold: float = EMBEDDING_SIMILARITY,
                  chunk: int = 1024) -> tuple[list[tuple[int, int, float]], bool]:
    """((i, j, cosine) with i < j for centred embeddings at least `threshold` alike,
    whether the list was cut to the most similar MAX_PAIRS_PER_IMAGE x n).

    Centred: ReLU activations are all >= 0, so raw cosines between any two images are high;
    subtracting the mean embedding leaves what tells images apart. Exact in chunks of rows:
    n^2 x D multiply-adds (5,000 images of 4,096-d fc7: about 10^11, seconds on a CPU).
    """
    x = np.asarray(embeddings, dtype=np.float32)
    n = len(x)
    if n < 2:
        return [], False
    x = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    found: list[tuple[int, int, float]] = []
    for start in range(0, n, chunk):
        sims = x[start:start + chunk] @ x.T
        rows, cols = np.nonzero(sims >= threshold)
        keep = cols > rows + start
        found += [(int(r + start), int(c), float(sims[r, c]))
                  for r, c in zip(rows[keep], cols[keep])]
    limit = MAX_PAIRS_PER_IMAGE * n
    cut = len(found) > limit
    if cut:
        found = sorted(found, key=lambda p: -p[2])[:limit]
    return sorted(found), cut


def likely_mislabeled(probs: np.ndarray, labels: np.ndarray,
                      confidence: float) -> list[tuple[int, int, float, float]]:
    """(row, predicted class, its probability, the label's probability) for rows where the
    model gives another class at least `confidence`, most confident first."""
    probs = np.asarray(probs)
    labels = np.asarray(labels, dtype=np.int64)
    if not len(probs):
        return []
    best = probs.argmax(axis=1)
    p_best = probs[np.arange(len(probs)), best]
    p_label = probs[np.arange(len(probs)), labels]
    rows = np.flatnonzero((best != labels) & (p_best >= confidence))
    rows = rows[np.argsort(-p_best[rows], kind="stable")]
    return [(int(r), int(best[r]), float(p_best[r]), float(p_label[r])) for r in rows]
