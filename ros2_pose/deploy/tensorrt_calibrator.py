"""INT8 entropy calibrator for TensorRT (imports tensorrt: load it only where TensorRT exists).

Feeds CalibrationBatches to the builder through a CUDA buffer and keeps TensorRT's calibration
table in a CalibrationCache, so a second build (or another machine with the same model) skips the
slow calibration pass. A cache made for another model is refused before the build starts.
"""
from __future__ import annotations

import tensorrt as trt
import torch

from ros2_pose.deploy.calibration import CalibrationBatches, CalibrationCache


class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
    def __init__(self, batches: CalibrationBatches | None, cache: CalibrationCache, input_name: str):
        trt.IInt8EntropyCalibrator2.__init__(self)
        self.cache = cache
        self.input_name = input_name
        self._cached_table = cache.read()  # raises CalibrationCacheMismatchError for another model
        if self._cached_table is None and batches is None:
            raise ValueError(f"no calibration cache at {cache.path} and no calibration images to make one")
        self.batches = batches
        self._iterator = iter(batches) if batches is not None else iter(())
        self._device_batch: torch.Tensor | None = None  # kept alive while TensorRT reads it
        self.batches_served = 0

    def get_batch_size(self) -> int:
        return self.batches.batch_size if self.batches is not None else 1

    def get_batch(self, names, *args):
        try:
            batch = next(self._iterator)
        except StopIteration:
            return None
        self._device_batch = torch.from_numpy(batch).cuda()
        torch.cuda.synchronize()
        self.batches_served += 1
        return [int(self._device_batch.data_ptr())]

    def read_calibration_cache(self):
        return self._cached_table

    def write_calibration_cache(self, cache) -> None:
        details = {"batches": self.batches_served,
                   "batch_size": self.get_batch_size(), "tensorrt_version": trt.__version__}
        if self.batches is not None:
            details["source"] = str(self.batches.source)
        self.cache.write(bytes(cache), details)
