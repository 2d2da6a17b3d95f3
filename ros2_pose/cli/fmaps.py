"""`ros2-pose fmaps dump|report`: feature maps of chosen layers and a channel-statistics report.

    ros2-pose fmaps dump --model M --inputs <bag|image folder|dataset folder> --layers encoder.0 encoder.1 \
        --out DIR [--max N] [--name sim]
    ros2-pose fmaps report --dump DIR --out REPORT_DIR [--compare sim real]
"""
from __future__ import annotations

import sys

DEFAULT_LAYERS = ["encoder.0", "encoder.1", "encoder.2", "encoder.3"]


def register(parser):
    sub = parser.add_subparsers(dest="fmaps_command", metavar="<dump|report>")
    dump = sub.add_parser("dump", help="run a torch model on crops and save chosen layers' feature maps (.npy)")
    dump.add_argument("--model", required=True, help="model folder (model.pt + model.yaml) or shipped model name")
    dump.add_argument("--inputs", required=True, help="bag, folder of cropped images, or dataset folder")
    dump.add_argument("--layers", nargs="+", default=DEFAULT_LAYERS,
                      help=f"module names as in named_modules() (default: {' '.join(DEFAULT_LAYERS)})")
    dump.add_argument("--out", required=True, help="dump folder (created; several --name sets may share it)")
    dump.add_argument("--name", default="data", help="name of this input set, e.g. sim or real (default: data)")
    dump.add_argument("--max", type=int, default=128, help="at most this many crops (default: 128)")
    dump.add_argument("--split", default="all", help="dataset split for a dataset folder (default: all)")
    dump.add_argument("--detector", default=None,
                      help="for bags: detector model giving the boxes (default: /ground_truth/detections)")
    dump.add_argument("--min-score", type=float, default=0.5,
                      help="with --detector: skip frames whose best box scores below this (default: 0.5)")
    dump.add_argument("--batch-size", type=int, default=32)
    dump.set_defaults(func=run_dump)
    report = sub.add_parser("report", help="channel grids, statistics, empty channels and a comparison as HTML")
    report.add_argument("--dump", required=True, help="folder written by `fmaps dump`")
    report.add_argument("--out", required=True, help="report folder (index.html, report.json, PNGs)")
    report.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                        help="compare two sets of the dump (deltas are B - A), e.g. --compare sim real")
    report.add_argument("--sets", nargs="+", default=None, help="sets to report (default: all in the dump)")
    report.add_argument("--zero-fraction", type=float, default=0.99,
                        help="a channel whose fraction of zero activations is above this is empty (default: 0.99)")
    report.add_argument("--eps", type=float, default=1e-6,
                        help="a channel whose largest activation is below this is empty (default: 1e-6)")
    report.set_defaults(func=run_report)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_dump(args) -> int:
    from ros2_pose.data.bags import BagError
    from ros2_pose.deploy.model_spec import build_torch_model, resolve_model_spec
    from ros2_pose.insight.dump import dump_feature_maps
    from ros2_pose.insight.feature_maps import UnknownLayerError
    from ros2_pose.insight.inputs import load_inputs

    try:
        spec = resolve_model_spec(args.model)
        model = build_torch_model(spec.load_config(), spec.require("weights"))
        inputs = load_inputs(args.inputs, max_items=args.max, split=args.split, detector=args.detector,
                             min_score=args.min_score)
        entry = dump_feature_maps(model, inputs, args.layers, args.out, name=args.name,
                                  model_source=str(args.model), batch_size=args.batch_size)
    except (FileNotFoundError, ValueError, UnknownLayerError, BagError, RuntimeError) as exc:
        print(f"fmaps dump failed: {exc}", file=sys.stderr)
        return 2
    print(f"{entry['count']} crops from {entry['kind']} {entry['source']} -> {args.out} (set {args.name!r})")
    for layer, info in entry["layers"].items():
        print(f"  {layer:16s} {'x'.join(map(str, info['shape'])):>20s}  {info['file']}")
    return 0


def run_report(args) -> int:
    from ros2_pose.insight.report import write_report

    try:
        report = write_report(args.dump, args.out, compare=tuple(args.compare) if args.compare else None,
                              zero_fraction_threshold=args.zero_fraction, eps=args.eps, sets=args.sets)
    except (FileNotFoundError, ValueError) as exc:
        print(f"fmaps report failed: {exc}", file=sys.stderr)
        return 2
    for finding in report["findings"]:
        print(finding)
    print(f"report: {args.out}/index.html")
    return 0
