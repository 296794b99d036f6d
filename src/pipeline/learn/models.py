"""Networks that read the 12-lead ECG: the paper's Networks I and II and better ones.

One :class:`ModelConfig` (a frozen dataclass) describes a network; :data:`PRESETS` names the
configurations this project trains. :func:`build_model` turns a config into a module.

Every model maps a scaled ECG ``x`` of shape (B, 12, T) to

- ``task == "activation"``: activation times, shape (B, 75), in units of
  ``label_scale_ms`` (the paper's Network I: 1 ms);
- ``task == "vm"``: transmembrane voltage, shape (B, 75, T), scaled to [0, 1].

Networks I and II follow the authors' code (landajuela/cardiac_ml, SqueezeNet "1_1"):
a stem ``Conv1d(12 -> 64, k 3)`` with ReLU and max-pool, eight Fire modules
(squeeze/expand-1/expand-3 = 16/64/64 x2, 32/128/128 x2, 48/192/192 x2, 64/256/256 x2, the
outputs of the two expands concatenated) with max-pools after the 2nd and 4th. Network I uses
stride 2 in the stem and pools (T = 500 -> 33) and the head Dropout, Conv(512 -> 75, k 3,
s 2), ReLU, AdaptiveAvgPool(3), Conv(75 -> 75, k 3, s 2): 486,657 parameters. Network II uses
stride 1 (length kept) and the head Dropout, Conv(512 -> 75, k 1): 392,907 parameters.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

#: Fire modules of the SqueezeNet trunk: (in, squeeze, expand1x1, expand3x3).
FIRE_SPECS: tuple[tuple[int, int, int, int], ...] = (
    (64, 16, 64, 64), (128, 16, 64, 64),
    (128, 32, 128, 128), (256, 32, 128, 128),
    (256, 48, 192, 192), (384, 48, 192, 192),
    (384, 64, 256, 256), (512, 64, 256, 256),
)
#: A max-pool follows the Fire modules with these indices.
POOL_AFTER: tuple[int, ...] = (1, 3)


@dataclass(frozen=True)
class ModelConfig:
    """What a network is and how the paper's recipe trains it.

    Attributes
    ----------
    name
        Preset name (``I``, ``II``, ``resnet``, ``ensemble``), used in file names.
    arch
        ``squeezenet`` or ``resnet``.
    task
        ``activation`` (ECG -> 75 times) or ``vm`` (ECG -> 75 x T voltages).
    n_leads, n_points, n_samples
        12 leads in, 75 points out, T samples (1 ms each).
    stride
        SqueezeNet stride of the stem and pools (2 for Network I, 1 for II).
    dropout
        Dropout before the head (authors: 0.1 for I, 0.0 for II).
    width
        ResNet channels of the first stage (doubled at each of ``stages``).
    stages
        ResNet stages, two residual blocks each, stride 2 between stages.
    kernel
        ResNet convolution kernel (odd).
    members
        Ensemble size (> 1: the prediction is the members' mean, their spread the
        uncertainty).
    shift_max_ms
        Training augmentation: ECG delayed by 0..shift_max_ms ms, labels by the same.
    label_scale_ms
        Activation targets are divided by this (1 ms = the paper: raw ms).
    schedule
        Learning-rate schedule: ``constant`` (paper) or ``cosine``.
    """

    name: str
    arch: str = "squeezenet"
    task: str = "activation"
    n_leads: int = 12
    n_points: int = 75
    n_samples: int = 500
    stride: int = 2
    dropout: float = 0.1
    width: int = 32
    stages: int = 3
    kernel: int = 7
    members: int = 1
    shift_max_ms: int = 40
    label_scale_ms: float = 1.0
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.arch not in ("squeezenet", "resnet"):
            raise ValueError(f"unknown arch {self.arch!r}; expected 'squeezenet' or 'resnet'")
        if self.task not in ("activation", "vm"):
            raise ValueError(f"unknown task {self.task!r}; expected 'activation' or 'vm'")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}")
        if self.kernel % 2 != 1:
            raise ValueError(f"kernel must be odd, got {self.kernel}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (stored in checkpoints; :meth:`from_dict` reverses it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ModelConfig:
        """Config from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = set(value) - names
        if extra:
            raise ValueError(f"unknown model config keys: {sorted(extra)}")
        return cls(**value)


#: Named networks. I and II are the paper's; the others are candidates that replace them
#: only where they beat them on validation (docs/learn.md).
PRESETS: dict[str, ModelConfig] = {
    "I": ModelConfig(name="I", arch="squeezenet", task="activation", stride=2, dropout=0.1,
                     shift_max_ms=40),
    "II": ModelConfig(name="II", arch="squeezenet", task="vm", stride=1, dropout=0.0,
                      shift_max_ms=0),
    "I_scaled": ModelConfig(name="I_scaled", arch="squeezenet", task="activation", stride=2,
                            dropout=0.1, shift_max_ms=40, label_scale_ms=100.0,
                            schedule="cosine"),
    "resnet": ModelConfig(name="resnet", arch="resnet", task="activation", width=32, stages=3,
                          kernel=7, dropout=0.1, shift_max_ms=40, label_scale_ms=100.0,
                          schedule="cosine"),
}
#: The deep ensemble: five members of the best network (``resnet``), each with its own
#: initialisation and dropout; the prediction is their mean, their SD the uncertainty.
PRESETS["ensemble"] = dataclasses.replace(PRESETS["resnet"], name="ensemble", members=5)


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The preset ``name`` with fields replaced by ``overrides``.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)


class Fire(nn.Module):
    """SqueezeNet Fire module: 1x1 squeeze, then 1x1 and 3-wide expands concatenated."""

    def __init__(self, inplanes: int, squeeze: int, expand1: int, expand3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv1d(inplanes, squeeze, kernel_size=1)
        self.expand1 = nn.Conv1d(squeeze, expand1, kernel_size=1)
        self.expand3 = nn.Conv1d(squeeze, expand3, kernel_size=3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.act(self.squeeze(x))
        return torch.cat([self.act(self.expand1(s)), self.act(self.expand3(s))], dim=1)


class SqueezeNet1d(nn.Module):
    """The paper's 1-D SqueezeNet (Network I with stride 2, Network II with stride 1)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        s = cfg.stride
        layers: list[nn.Module] = [
            nn.Conv1d(cfg.n_leads, 64, kernel_size=3, stride=s, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(kernel_size=3, stride=s, padding=1, ceil_mode=True),
        ]
        for i, spec in enumerate(FIRE_SPECS):
            layers.append(Fire(*spec))
            if i in POOL_AFTER:
                layers.append(nn.MaxPool1d(kernel_size=3, stride=s, padding=1, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        if cfg.task == "activation":
            self.head = nn.Sequential(
                nn.Dropout(cfg.dropout),
                nn.Conv1d(512, cfg.n_points, kernel_size=3, stride=2),
                nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool1d(3),
                nn.Conv1d(cfg.n_points, cfg.n_points, kernel_size=3, stride=2),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(cfg.dropout),
                                      nn.Conv1d(512, cfg.n_points, kernel_size=1))
        self.task = cfg.task
        for m in self.modules():  # the authors' initialisation
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(x))
        return y[..., 0] if self.task == "activation" else y


class ResBlock(nn.Module):
    """Pre-activation residual block: (BN, ReLU, Conv) x 2 plus a (strided 1x1) shortcut."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.bn1 = nn.BatchNorm1d(cin)
        self.conv1 = nn.Conv1d(cin, cout, kernel, stride=stride, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, kernel, padding=pad, bias=False)
        self.short: nn.Module = (nn.Identity() if cin == cout and stride == 1 else
                                 nn.Conv1d(cin, cout, 1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(torch.relu(self.bn1(x)))
        h = self.conv2(torch.relu(self.bn2(h)))
        return h + self.short(x)


class ResNet1d(nn.Module):
    """1-D pre-activation ResNet that keeps timing: a time-ramp input channel and a head
    that flattens 8 pooled time bins instead of averaging time away.

    activation: stem Conv(13 -> w, k, s 2), ``stages`` stages of two blocks (w, 2w, 4w, ...,
    stride 2 between stages), BN-ReLU, AdaptiveAvgPool(8), Dropout, Linear(8 C -> 75).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.task != "activation":
            raise ValueError("the resnet preset predicts activation times only")
        w, k = cfg.width, cfg.kernel
        ramp = torch.linspace(0.0, 1.0, cfg.n_samples).reshape(1, 1, -1)
        self.register_buffer("ramp", ramp, persistent=False)
        blocks: list[nn.Module] = [nn.Conv1d(cfg.n_leads + 1, w, k, stride=2, padding=k // 2,
                                             bias=False)]
        cin = w
        for stage in range(cfg.stages):
            cout = w * 2 ** stage
            blocks.append(ResBlock(cin, cout, k, 1 if stage == 0 else 2))
            blocks.append(ResBlock(cout, cout, k, 1))
            cin = cout
        blocks += [nn.BatchNorm1d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool1d(8)]
        self.body = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.dropout),
                                  nn.Linear(8 * cin, cfg.n_points))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, C, 8): the pooled time bins the head reads."""
        ramp = self.ramp.expand(x.shape[0], 1, x.shape[-1])
        return self.body(torch.cat([x, ramp], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class Ensemble(nn.Module):
    """Independently initialised members trained side by side; ``forward`` is their mean.

    :meth:`members_forward` gives every member's output, shape (K, B, ...); their standard
    deviation over K is the per-point uncertainty.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def members_forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.members_forward(x).mean(dim=0)


def _single(cfg: ModelConfig) -> nn.Module:
    return SqueezeNet1d(cfg) if cfg.arch == "squeezenet" else ResNet1d(cfg)


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network described by ``cfg`` (an :class:`Ensemble` when ``members > 1``)."""
    if cfg.members > 1:
        return Ensemble([_single(cfg) for _ in range(cfg.members)])
    return _single(cfg)


def members_output(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every member's output, shape (K, B, ...); K = 1 for a single network."""
    if isinstance(model, Ensemble):
        return model.members_forward(x)
    return model(x).unsqueeze(0)


@torch.no_grad()
def member_units(model: torch.nn.Module, x: np.ndarray, device: torch.device | None = None,
                 batch_size: int = 64) -> np.ndarray:
    """Every member's outputs (K, N, ...) in network units for scaled ECGs (N, 12, T)."""
    device = device or torch.device("cpu")
    model.eval()
    outs = [members_output(model, torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size]))
                           .to(device)).cpu().numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(outs, axis=1)


def n_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def embedding(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Penultimate embedding of scaled ECGs, the space of the out-of-distribution score.

    The last feature maps before the head, averaged over time: SqueezeNet (B, 512), ResNet
    (B, C) with C the channels of the last stage; an ensemble concatenates its members'
    embeddings (B, K C).

    Parameters
    ----------
    model
        A network of :func:`build_model` (in eval mode for deterministic output).
    x
        (B, 12, T) scaled ECG.
    """
    if isinstance(model, Ensemble):
        return torch.cat([embedding(m, x) for m in model.members], dim=1)
    if isinstance(model, (ResNet1d, SqueezeNet1d)):
        return model.features(x).mean(dim=-1)
    raise TypeError(f"no embedding for {type(model).__name__}")
