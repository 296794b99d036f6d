"""Export a checkpoint to ONNX and check that ONNX Runtime gives the same predictions.

The exported graph takes the scaled ECG ``ecg`` (B, 12, T) (each lead divided by its range,
:func:`pipeline.learn.data.scale_ecg`) and returns the network output ``out`` in network
units (activation / ``label_scale_ms``, or Vm in [0, 1]); the batch axis is dynamic. The
normalisation constants go into the model's metadata (``normalisation``, JSON).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import InputError
from pipeline.io import atomic_path
from pipeline.learn.checkpoint import load_model

log = logging.getLogger(__name__)


def export_onnx(model_path: str | Path, out_path: str | Path, *, check_batch: int = 4,
                seed: int = 0, atol: float = 1e-4) -> float:
    """Write ``out_path`` and return the largest |ONNX - PyTorch| on a random batch.

    Raises
    ------
    InputError
        When ONNX Runtime's output differs from PyTorch's by more than ``atol`` relative to
        the output's scale.
    """
    import onnx
    import onnxruntime as ort

    model, cfg, norm, _ = load_model(model_path)
    dummy = torch.zeros(1, cfg.n_leads, cfg.n_samples)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        tmp_onnx = tmp.with_name(tmp.name + ".onnx")
        torch.onnx.export(model, (dummy,), str(tmp_onnx), input_names=["ecg"],
                          output_names=["out"], dynamic_axes={"ecg": {0: "batch"},
                                                              "out": {0: "batch"}},
                          opset_version=18, dynamo=True,
                          verbose=False)
        proto = onnx.load(str(tmp_onnx))
        meta = {"network": cfg.name, "task": cfg.task,
                "normalisation": json.dumps(norm.to_dict()),
                "model_config": json.dumps(cfg.to_dict())}
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        tmp_onnx.unlink()
        Path(str(tmp_onnx) + ".data").unlink(missing_ok=True)   # external weights
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(check_batch, cfg.n_leads, cfg.n_samples, generator=gen) - 0.5
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    got = sess.run(["out"], {"ecg": x.numpy()})[0]
    diff = float(np.max(np.abs(got - ref)))
    scale = max(1.0, float(np.max(np.abs(ref))))
    log.info("exported %s -> %s; max |onnx - torch| = %.3g (scale %.3g)", model_path,
             out_path, diff, scale)
    if not diff <= atol * scale:
        raise InputError(f"ONNX export of {model_path} differs from PyTorch by {diff:.3g} "
                         f"(> {atol * scale:.3g})")
    return diff
