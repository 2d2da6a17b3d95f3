"""`ros2-pose prune`: cut weak channels out of a trained dolly pose network, for retraining.

    ros2-pose prune --model M --out DIR --criterion activation --data <dataset|bag|image folder>
    ros2-pose prune --model M --out DIR --criterion weight_norm [--threshold 0.1] [--min-filters 16]
                    [--granularity 8] [--exclude encoder.0 ...]

DIR becomes a model folder (model.pt, model.yaml whose kwargs hold the pruned widths, model.onnx with
its ONNX Runtime parity) plus prune_report.json and retrain.yaml (the `model:` section for
`ros2-pose train dolly --config DIR/retrain.yaml --data ...`). See ros2_pose/pruning/dolly.py.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

# The seed's "empty channels": an activation threshold of 1% of the layer's strongest channel mean;
# weight norms use filter_pruning's default.
DEFAULT_THRESHOLD = {"activation": 0.01, "weight_norm": 0.1}


def register(parser):
    from ros2_pose.pruning.dolly import CRITERIA, PRUNABLE_LAYERS
    from ros2_pose.pruning.filter_pruning import NORMALIZERS

    parser.add_argument("--model", required=True, help="dolly pose model folder or shipped model name")
    parser.add_argument("--out", required=True, help="folder for the pruned model (must not hold a model yet)")
    parser.add_argument("--criterion", choices=CRITERIA, default="activation",
                        help="score channels by mean activation on --data, or by effective weight norm")
    parser.add_argument("--data", default=None, help="dataset folder, bag or folder of crops (criterion activation)")
    parser.add_argument("--max", type=int, default=256, help="at most this many crops from --data (default: 256)")
    parser.add_argument("--split", default="all", help="dataset split of --data (default: all)")
    parser.add_argument("--detector", default=None, help="for a bag: detector model giving the boxes")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keep channels whose normalised score is above this (default: 0.01 activation, "
                             "0.1 weight_norm; 0 with activation removes only channels that are zero on the data)")
    parser.add_argument("--min-filters", type=int, default=8, help="keep at least this many per layer (default: 8)")
    parser.add_argument("--granularity", type=int, default=4, help="kept counts are multiples of this (default: 4)")
    parser.add_argument("--normalizer", choices=NORMALIZERS, default="max", help="score normalisation per layer")
    parser.add_argument("--exclude", nargs="+", default=[], metavar="LAYER",
                        help=f"layers that keep every channel (and their width partners): {' '.join(PRUNABLE_LAYERS)}")
    parser.add_argument("--no-export", action="store_true", help="skip model.onnx")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.set_defaults(func=run)


def run(args) -> int:
    import yaml

    from ros2_pose.data.bags import BagError
    from ros2_pose.deploy.model_spec import CONFIG_FILE, build_torch_model, resolve_model_spec, write_model_folder
    from ros2_pose.pruning.dolly import prune_dolly, retrain_model_section
    from ros2_pose.pruning.filter_pruning import PruningError, PruningOptions

    out = Path(args.out)
    try:
        if (out / CONFIG_FILE).exists():
            raise FileExistsError(f"{out} already holds a model; choose a new --out")
        if args.criterion == "activation" and not args.data:
            raise PruningError("--criterion activation needs --data (a dataset folder, bag or folder of crops)")
        spec = resolve_model_spec(args.model)
        config = spec.load_config()
        model = build_torch_model(config, spec.require("weights"))
        crops = boxes = None
        if args.criterion == "activation":
            from ros2_pose.insight.inputs import load_inputs
            inputs = load_inputs(args.data, max_items=args.max, split=args.split, detector=args.detector)
            crops, boxes = inputs.crops, inputs.boxes
        threshold = DEFAULT_THRESHOLD[args.criterion] if args.threshold is None else args.threshold
        options = PruningOptions(granularity=args.granularity, threshold=threshold, min_filters=args.min_filters,
                                 normalizer=args.normalizer, excluded_layers=tuple(args.exclude))
        result = prune_dolly(model, options, args.criterion, crops, boxes, batch_size=args.batch_size)
        parity = write_model_folder(out, result.model.eval(), dataclasses.replace(config, kwargs=result.kwargs),
                                    export=not args.no_export)
    except (PruningError, FileNotFoundError, FileExistsError, ValueError, BagError) as exc:
        print(f"prune failed: {exc}", file=sys.stderr)
        return 2
    report = dict(result.report, source_model=str(args.model), data=args.data, onnx_parity=parity)
    (out / "prune_report.json").write_text(json.dumps(report, indent=1))
    (out / "retrain.yaml").write_text(
        f"# ros2-pose train dolly --config {out / 'retrain.yaml'} --data DATASET --out RUN\n"
        + "# init_from: this folder - the pruned network's widths and kept weights are the starting point\n"
        + yaml.safe_dump({"init_from": ".", "model": retrain_model_section(result.kwargs)}, sort_keys=False))
    before, after = report["parameters_before"], report["parameters_after"]
    print(f"widths {report['widths_before']} -> {report['widths_after']} ({args.criterion}, threshold {threshold:g}); "
          f"parameters {before} -> {after} ({after / before:.1%})")
    for layer, removed in report["removed"].items():
        print(f"  {layer:12s} removed {len(removed):3d} of {len(report['scores'][layer]):3d}")
    if parity:
        print("ONNX Runtime vs torch max abs error: " + ", ".join(f"{k} {v:.1e}" for k, v in parity.items()))
    print(f"pruned model folder {out}; retrain with: ros2-pose train dolly --config {out / 'retrain.yaml'} --data DATASET --out RUN")
    return 0
