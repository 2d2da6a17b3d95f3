"""Per-channel statistics of feature maps (batch x channels x height x width).

`ChannelStatistics` accumulates batch by batch (sums in float64), so a dump larger than memory or a
model run over a whole dataset is reduced without holding every activation: the same code serves
`ros2-pose fmaps report` (from .npy files, memory-mapped) and activation-based pruning (from hooks).
A channel is *empty* on the data when it (almost) never fires: its fraction of zero activations is
above `zero_fraction_threshold` or its largest activation is below `eps`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_ZERO_FRACTION = 0.99
DEFAULT_EPS = 1e-6


class FeatureMapShapeError(ValueError):
    """A feature map that is not batch x channels [x height x width], or a batch of another width."""


def as_channel_rows(batch: np.ndarray) -> np.ndarray:
    """N x C x H x W (or N x C) -> C x (N*H*W) float64 view, the values each channel produced."""
    batch = np.asarray(batch)
    if batch.ndim < 2:
        raise FeatureMapShapeError(f"a feature map is batch x channels [x height x width]; got shape {batch.shape}")
    channels = batch.shape[1]
    return np.moveaxis(batch, 1, 0).reshape(channels, -1).astype(np.float64, copy=False)


@dataclass
class ChannelStatistics:
    """Running per-channel count, sum, sum of squares, min, max and count of zeros (<= 0)."""

    channels: int
    count: int = 0
    total: np.ndarray = field(default=None)
    total_squares: np.ndarray = field(default=None)
    minimum: np.ndarray = field(default=None)
    maximum: np.ndarray = field(default=None)
    zeros: np.ndarray = field(default=None)

    def __post_init__(self):
        c = self.channels
        self.total = np.zeros(c) if self.total is None else self.total
        self.total_squares = np.zeros(c) if self.total_squares is None else self.total_squares
        self.minimum = np.full(c, np.inf) if self.minimum is None else self.minimum
        self.maximum = np.full(c, -np.inf) if self.maximum is None else self.maximum
        self.zeros = np.zeros(c, np.int64) if self.zeros is None else self.zeros

    @classmethod
    def of(cls, batch: np.ndarray) -> "ChannelStatistics":
        stats = cls(np.asarray(batch).shape[1] if np.ndim(batch) >= 2 else 0)
        stats.update(batch)
        return stats

    def update(self, batch: np.ndarray) -> "ChannelStatistics":
        rows = as_channel_rows(batch)
        if rows.shape[0] != self.channels:
            raise FeatureMapShapeError(f"batch has {rows.shape[0]} channels, the statistics {self.channels}")
        if rows.shape[1] == 0:
            return self
        if not np.isfinite(rows).all():
            raise FeatureMapShapeError("feature map holds NaN or infinite values; statistics would be meaningless")
        self.count += rows.shape[1]
        self.total += rows.sum(axis=1)
        self.total_squares += np.square(rows).sum(axis=1)
        self.minimum = np.minimum(self.minimum, rows.min(axis=1))
        self.maximum = np.maximum(self.maximum, rows.max(axis=1))
        # <= 0: after a ReLU every non-positive pre-activation is an exact zero
        self.zeros += np.count_nonzero(rows <= 0, axis=1)
        return self

    def _require_data(self) -> None:
        if self.count == 0:
            raise FeatureMapShapeError("no activations were accumulated (empty input set?)")

    @property
    def mean(self) -> np.ndarray:
        self._require_data()
        return self.total / self.count

    @property
    def std(self) -> np.ndarray:
        mean = self.mean
        # population std; clipped because E[x^2] - E[x]^2 can round below 0 for constant channels
        return np.sqrt(np.maximum(self.total_squares / self.count - mean ** 2, 0.0))

    @property
    def zero_fraction(self) -> np.ndarray:
        self._require_data()
        return self.zeros / self.count

    def empty_channels(self, zero_fraction_threshold: float = DEFAULT_ZERO_FRACTION,
                       eps: float = DEFAULT_EPS) -> np.ndarray:
        """Indices of the channels that are empty on this data."""
        if not 0 <= zero_fraction_threshold <= 1:
            raise ValueError(f"zero_fraction_threshold must be in [0, 1], got {zero_fraction_threshold}")
        empty = (self.zero_fraction > zero_fraction_threshold) | (self.maximum < eps)
        return np.flatnonzero(empty)

    def table(self) -> dict[str, list[float]]:
        """Column name -> one value per channel (JSON-ready)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "min": self.minimum.tolist(),
                "max": self.maximum.tolist(), "zero_fraction": self.zero_fraction.tolist()}


def statistics_of_array(array: np.ndarray, batch_size: int = 64) -> ChannelStatistics:
    """Statistics of an N x C x ... array (e.g. a memory-mapped .npy), read `batch_size` items at a time."""
    if np.ndim(array) < 2:
        raise FeatureMapShapeError(f"a feature map is batch x channels [x height x width]; got shape {array.shape}")
    stats = ChannelStatistics(array.shape[1])
    for start in range(0, array.shape[0], batch_size):
        stats.update(np.asarray(array[start:start + batch_size]))
    return stats


@dataclass(frozen=True)
class ChannelComparison:
    """Per-channel deltas `b - a` of two sources' statistics over the same layer."""

    delta: dict[str, np.ndarray]
    empty_only_in_a: np.ndarray
    empty_only_in_b: np.ndarray
    relative_mean_change: float       # (mean over channels of b) / (of a) - 1; nan when a is all zero


def compare_statistics(a: ChannelStatistics, b: ChannelStatistics,
                       zero_fraction_threshold: float = DEFAULT_ZERO_FRACTION,
                       eps: float = DEFAULT_EPS) -> ChannelComparison:
    if a.channels != b.channels:
        raise FeatureMapShapeError(f"cannot compare a layer of {a.channels} channels with one of {b.channels}")
    delta = {"mean": b.mean - a.mean, "std": b.std - a.std, "min": b.minimum - a.minimum,
             "max": b.maximum - a.maximum, "zero_fraction": b.zero_fraction - a.zero_fraction}
    empty_a = set(a.empty_channels(zero_fraction_threshold, eps).tolist())
    empty_b = set(b.empty_channels(zero_fraction_threshold, eps).tolist())
    mean_a = float(a.mean.mean())
    relative = float(b.mean.mean()) / mean_a - 1.0 if mean_a != 0 else float("nan")
    return ChannelComparison(delta, np.array(sorted(empty_a - empty_b), int),
                             np.array(sorted(empty_b - empty_a), int), relative)
