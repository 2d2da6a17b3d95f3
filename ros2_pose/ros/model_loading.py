"""Loading a node's models through the one runner, with the node's backend parameters.

Every model-running node declares `backend`, `precision`, `device`, `fallback_backend` and
`intra_op_threads`; this turns them into a runner and logs what actually runs (a fallback is
explicit in the parameters and shows in the log, never silent).
"""
from __future__ import annotations

from ros2_pose.deploy.runner import create_runner
from ros2_pose.resources import model_location

MODEL_PARAMETERS = {
    "backend": ("onnxruntime", "inference backend: torch | onnxruntime | tensorrt"),
    "precision": ("fp32", "fp32 | fp16 | int8 (int8 and fp16 need tensorrt, or torch on cuda for fp16)"),
    "device": ("cpu", "cpu | cuda"),
    "fallback_backend": ("", "backend used when `backend` cannot run here (empty: fail loudly)"),
    "intra_op_threads": (1, "ONNX Runtime threads per model (the robot runs other nodes too)"),
}


def load_runner(node, name_or_folder: str):
    """A runner for `name_or_folder` configured by the node's model parameters (node.config)."""
    c = node.config
    runner = create_runner(model_location(name_or_folder), backend=c["backend"], precision=c["precision"],
                           device=c["device"], warmup=2, fallback=c["fallback_backend"] or None,
                           intra_op_threads=int(c["intra_op_threads"]) or None)
    described = runner.describe()
    node.get_logger().info(f"model {name_or_folder}: {described.get('backend')}/{described.get('precision')}/"
                           f"{described.get('device')}"
                           + (f" (FALLBACK: {described['fallback_reason']})" if described.get("fallback_reason") else ""))
    return runner
