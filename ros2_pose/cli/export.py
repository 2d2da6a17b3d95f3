"""`ros2-pose export --model <shipped-name-or-folder>`: re-export model.onnx from model.pt + model.yaml
and check it against PyTorch with ONNX Runtime (recorded in onnx_parity.json)."""
from __future__ import annotations

import sys


def register(parser):
    parser.add_argument("--model", required=True, help="shipped model name (models/<name>) or a model folder")
    parser.add_argument("--out", help="ONNX path to write (default: <model folder>/model.onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--static-batch", action="store_true", help="fix the batch axis instead of making it dynamic")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="max abs error allowed between ONNX Runtime and PyTorch (default: 1e-4)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ros2_pose.deploy.export import DEFAULT_PARITY_TOLERANCE, export_model_folder
    from ros2_pose.deploy.model_spec import ModelSpec, resolve_model_spec

    try:
        spec = resolve_model_spec(args.model)
        if spec.folder is None:
            raise FileNotFoundError(f"{args.model} is not a model folder (need model.pt + model.yaml)")
        spec = ModelSpec.from_folder(spec.folder)
        tolerance = DEFAULT_PARITY_TOLERANCE if args.tolerance is None else args.tolerance
        record = export_model_folder(spec, out=args.out, opset=args.opset,
                                     dynamic_batch=not args.static_batch, tolerance=tolerance)
    except (FileNotFoundError, ValueError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
    onnx_path = args.out or spec.onnx
    print(f"wrote {onnx_path} (opset {record['opset']}, batch {'dynamic' if record['dynamic_batch'] else 'static'}, "
          f"sha256 {record['onnx_sha256'][:12]}...)")
    print(f"ONNX Runtime vs PyTorch, max abs error at batch {record['checked_batches']}:")
    for name, error in record["parity"].items():
        print(f"  {name:24s} {error:.3e}")
    if not record["passed"]:
        print(f"parity FAILED: error above tolerance {record['tolerance']:g}", file=sys.stderr)
        return 1
    print(f"parity ok (tolerance {record['tolerance']:g}); recorded in onnx_parity.json")
    return 0
