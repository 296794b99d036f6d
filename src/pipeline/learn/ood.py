"""Out-of-distribution score: how far an ECG lies from the training set, as the network sees it.

The space is the network's penultimate embedding (:func:`pipeline.learn.models.embedding`:
the last feature maps averaged over time; an ensemble concatenates its members'). On the
training split each embedding dimension is standardised (mean ``mu``, SD ``sd``) and a
covariance is estimated with Ledoit-Wolf shrinkage towards the identity (Ledoit & Wolf,
J. Multivar. Anal. 88:365, 2004), which keeps it invertible with fewer samples than
dimensions. The score of an input is its Mahalanobis distance

    score(x) = sqrt(z^T P z),  z = (e(x) - mu) / sd,  P = inverse of the shrunk covariance,

dimensionless (for Gaussian embeddings of dimension D it is about sqrt(D) in distribution).
The threshold is the ``quantile`` (default 0.99) of the scores of the validation split, so
about 1 % of in-distribution inputs are flagged. Stored in the checkpoint under ``ood``
(tensors and numbers only, readable with ``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.learn.models import embedding

log = logging.getLogger(__name__)

#: Default quantile of the validation scores used as the threshold.
QUANTILE = 0.99


def ledoit_wolf(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of centred data.

    Parameters
    ----------
    z
        (N, D) centred samples.

    Returns
    -------
    tuple
        ``(cov, shrinkage)``: (D, D) ``(1 - s) S + s mu I`` with ``S = z^T z / N``,
        ``mu = trace(S) / D`` and the shrinkage ``s`` in [0, 1] that minimises the expected
        Frobenius loss (the estimator of scikit-learn's ``ledoit_wolf``).
    """
    n, d = z.shape
    emp = z.T @ z / n
    mu = float(np.trace(emp)) / d
    z2 = z ** 2
    delta_ = float(((z.T @ z) ** 2).sum()) / n ** 2
    beta_ = float((z2.T @ z2).sum())
    beta = (beta_ / n - delta_) / (d * n)
    delta = (delta_ - 2.0 * mu * float(np.trace(emp)) + d * mu ** 2) / d
    beta = min(beta, delta)
    s = 0.0 if delta <= 0 else beta / delta
    return (1.0 - s) * emp + s * mu * np.eye(d), float(s)


@dataclass
class OODModel:
    """Mahalanobis score in the standardised embedding, with its threshold.

    Attributes
    ----------
    mean, sd
        (D,) training mean and SD of the embedding.
    precision
        (D, D) inverse of the shrunk covariance of the standardised embedding.
    shrinkage
        Ledoit-Wolf shrinkage in [0, 1].
    threshold
        Score above which an input is out of distribution.
    quantile
        The validation quantile that gave ``threshold``.
    reference
        Summary numbers: ``train_median``, ``val_median``, ``val_max``, ``n_train``, ``n_val``.
    """

    mean: np.ndarray
    sd: np.ndarray
    precision: np.ndarray
    shrinkage: float
    threshold: float
    quantile: float
    reference: dict[str, float]

    def score(self, emb: np.ndarray) -> np.ndarray:
        """Mahalanobis distances (N,) of embeddings ``emb`` (N, D)."""
        z = (np.asarray(emb, np.float64) - self.mean) / self.sd
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", z, self.precision, z), 0.0))

    def to_dict(self) -> dict[str, Any]:
        """Tensors and numbers for the checkpoint."""
        return {"space": "embedding", "mean": torch.from_numpy(self.mean),
                "sd": torch.from_numpy(self.sd), "precision": torch.from_numpy(self.precision),
                "shrinkage": self.shrinkage, "threshold": self.threshold,
                "quantile": self.quantile, "reference": dict(self.reference)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OODModel:
        """Inverse of :meth:`to_dict`."""
        return cls(mean=np.asarray(d["mean"], np.float64), sd=np.asarray(d["sd"], np.float64),
                   precision=np.asarray(d["precision"], np.float64),
                   shrinkage=float(d["shrinkage"]), threshold=float(d["threshold"]),
                   quantile=float(d["quantile"]), reference=dict(d["reference"]))


@torch.no_grad()
def embed(model: nn.Module, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Embeddings (N, D) float64 of scaled ECGs ``x`` (N, 12, T), model in eval mode."""
    model.eval()
    dev = next(model.parameters()).device
    out = [embedding(model, torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(dev))
           .cpu().numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float64)


def fit_ood(emb_train: np.ndarray, emb_val: np.ndarray, quantile: float = QUANTILE) -> OODModel:
    """Fit the score on training embeddings and set the threshold on validation ones.

    Parameters
    ----------
    emb_train, emb_val
        (N_train, D) and (N_val, D) embeddings.
    quantile
        Threshold = this quantile of the validation scores.
    """
    mean = emb_train.mean(axis=0)
    sd = emb_train.std(axis=0)
    floor = 1e-3 * float(np.median(sd[sd > 0])) if (sd > 0).any() else 1.0
    sd = np.maximum(sd, floor)
    cov, s = ledoit_wolf((emb_train - mean) / sd)
    model = OODModel(mean=mean, sd=sd, precision=np.linalg.pinv(cov, hermitian=True),
                     shrinkage=s, threshold=np.inf, quantile=quantile, reference={})
    tr, va = model.score(emb_train), model.score(emb_val)
    model.threshold = float(np.quantile(va, quantile))
    model.reference = {"train_median": float(np.median(tr)), "val_median": float(np.median(va)),
                       "val_max": float(va.max()), "n_train": float(len(tr)),
                       "n_val": float(len(va)), "dim": float(emb_train.shape[1])}
    log.info("OOD score: dim %d, shrinkage %.3f, train median %.2f, val median %.2f, "
             "threshold (val q%.2f) %.2f", emb_train.shape[1], s, model.reference["train_median"],
             model.reference["val_median"], quantile, model.threshold)
    return model


def attach_ood(model_path: str | Path, dataset: str | Path,
               quantile: float = QUANTILE) -> OODModel:
    """Fit the OOD score of a checkpoint on its dataset's train/val splits and store it.

    The checkpoint file is rewritten (atomically) with the key ``ood``.
    """
    from pipeline.learn.data import read_dataset

    return attach_ood_data(model_path, read_dataset(dataset), quantile)


def attach_ood_data(model_path: str | Path, data: Any, quantile: float = QUANTILE) -> OODModel:
    """:func:`attach_ood` with the dataset already read (a :class:`LearnData`)."""
    from pipeline.learn import checkpoint
    from pipeline.learn.data import scale_ecg

    model, _, _, ckpt = checkpoint.load_model(model_path)
    ood = fit_ood(embed(model, scale_ecg(data.ecg[data.splits["train"]])),
                  embed(model, scale_ecg(data.ecg[data.splits["val"]])), quantile)
    payload = {k: v for k, v in ckpt.items() if k != "format"}
    payload["ood"] = ood.to_dict()
    checkpoint.save(model_path, payload)
    return ood


def from_checkpoint(ckpt: dict[str, Any]) -> OODModel | None:
    """The checkpoint's OOD score, or None when it has none (older checkpoints)."""
    d = ckpt.get("ood")
    return OODModel.from_dict(d) if d else None
