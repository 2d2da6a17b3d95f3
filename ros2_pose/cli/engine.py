"""`ros2-pose engine build|info`: build TensorRT engines into the engine cache, inspect one."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

EXIT_NO_TENSORRT = 3


def register(parser):
    sub = parser.add_subparsers(dest="engine_verb", metavar="<build|info>", required=True)
    build = sub.add_parser("build", help="build a TensorRT engine from an ONNX model")
    build.add_argument("--onnx", required=True, help="the ONNX model")
    build.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    source = build.add_mutually_exclusive_group()
    source.add_argument("--calib-images", help="int8: folder of png/jpg calibration images")
    source.add_argument("--calib-bag", help="int8: rosbag2 bag with calibration images")
    build.add_argument("--calib-topic", default="/camera/image_raw", help="image topic in --calib-bag")
    build.add_argument("--calib-cache", help="calibration table path (default: <out>/<stem>.<model hash>.calib)")
    build.add_argument("--calib-max-images", type=int, default=512)
    build.add_argument("--batch-size", type=int, default=1,
                       help="max batch of the engine's profile and calibration batch size (default: 1)")
    build.add_argument("--workspace-mb", type=int, default=1024)
    for flag in ("min", "opt", "max"):
        build.add_argument(f"--{flag}", action="append", default=[], metavar="NAME:DxDxD",
                           help=f"{flag} shape of a dynamic input (repeat per input)")
    build.add_argument("--dla-core", type=int, help="build for this DLA core (with GPU fallback)")
    build.add_argument("--out", required=True, help="engine cache folder")
    build.set_defaults(func=run_build)

    info = sub.add_parser("info", help="show what an engine was built from and whether it fits this machine")
    info.add_argument("engine", help="an .engine file (its .json sidecar is read too)")
    info.set_defaults(func=run_info)


def _profiles_from_args(args, input_shapes):
    from ros2_pose.deploy.tensorrt_engine import ProfileError, default_profiles, parse_shape_argument

    given = {flag: dict(parse_shape_argument(s) for s in getattr(args, flag)) for flag in ("min", "opt", "max")}
    names = set(given["min"]) | set(given["opt"]) | set(given["max"])
    incomplete = [n for n in names if not all(n in given[f] for f in given)]
    if incomplete:
        raise ProfileError(f"inputs {sorted(incomplete)} need all of --min, --opt and --max")
    profiles = [(n, given["min"][n], given["opt"][n], given["max"][n]) for n in sorted(names)]
    rest = {n: s for n, s in input_shapes.items() if n not in names}
    return profiles + default_profiles(rest, max_batch=args.batch_size)


def _calibration_batches(args, onnx_path: Path, input_shapes):
    from ros2_pose.deploy.calibration import CalibrationBatches, ImagePreprocess
    from ros2_pose.deploy.model_spec import CONFIG_FILE, load_model_config

    if len(input_shapes) != 1:
        raise ValueError(f"int8 calibration feeds one image input; this network has {sorted(input_shapes)}")
    (name, shape), = input_shapes.items()
    if len(shape) != 4 or any(d <= 0 for d in shape[1:]):
        raise ValueError(f"int8 calibration needs an NCHW input with fixed C, H, W; {name!r} is {shape}")
    config_path = onnx_path.parent / CONFIG_FILE
    preprocess_args = load_model_config(config_path).preprocess if config_path.is_file() else {}
    if not config_path.is_file():
        print(f"note: no {CONFIG_FILE} beside {onnx_path}: calibrating with images scaled to [0, 1], "
              f"no mean/std normalisation")
    preprocess = ImagePreprocess(shape[2], shape[3], channels=shape[1], mean=preprocess_args.get("mean"),
                                 std=preprocess_args.get("std"))
    source = args.calib_images or args.calib_bag
    return CalibrationBatches(source, preprocess, batch_size=args.batch_size, max_images=args.calib_max_images,
                              topic=args.calib_topic if args.calib_bag else None)


def run_build(args) -> int:
    from ros2_pose.deploy.engine_cache import EngineCache
    from ros2_pose.deploy.export import file_sha256
    from ros2_pose.deploy.runner import BackendUnavailableError
    from ros2_pose.deploy import tensorrt_engine as te

    onnx_path = Path(args.onnx)
    out = Path(args.out)
    try:
        if not onnx_path.is_file():
            raise FileNotFoundError(f"ONNX model {onnx_path} does not exist")
        input_shapes = te.onnx_input_shapes(onnx_path)
        profiles = te.validate_profiles(_profiles_from_args(args, input_shapes), input_shapes)
        batches = None
        calib_cache = Path(args.calib_cache) if args.calib_cache else \
            out / f"{onnx_path.stem}.{file_sha256(onnx_path)[:16]}.calib"
        if args.precision == "int8":
            if args.calib_images or args.calib_bag:
                batches = _calibration_batches(args, onnx_path, input_shapes)
                print(f"calibration: {len(batches)} batches of {batches.batch_size} from {batches.source}")
            elif not calib_cache.is_file():
                raise ValueError("int8 needs --calib-images or --calib-bag (or an existing --calib-cache)")
        elif args.calib_images or args.calib_bag:
            raise ValueError(f"calibration data is only used for int8, not {args.precision}")
        trt = te.import_tensorrt()
        gpu = te.current_gpu_name()
    except BackendUnavailableError as exc:
        print(f"engine build: {exc}", file=sys.stderr)
        return EXIT_NO_TENSORRT
    except (FileNotFoundError, ValueError) as exc:
        print(f"engine build: {exc}", file=sys.stderr)
        return 2
    calibrator = te.make_calibrator(onnx_path, batches, calib_cache) if args.precision == "int8" else None
    fingerprint = te.fingerprint_for(onnx_path, args.precision, gpu, profiles, args.dla_core, trt.__version__)
    print(f"building {args.precision} engine for {onnx_path} on {gpu} with TensorRT {trt.__version__} ...")
    engine_bytes = te.build_engine(onnx_path, args.precision, args.workspace_mb, profiles, args.dla_core, calibrator)
    path = EngineCache(out).store(onnx_path.stem, fingerprint, engine_bytes, onnx_path)
    print(f"wrote {path} ({len(engine_bytes) / 1e6:.1f} MB) and {path.with_suffix('.json').name}")
    if calibrator is not None:
        print(f"calibration table: {calib_cache}")
    return 0


def run_info(args) -> int:
    from ros2_pose.deploy.engine_cache import EngineCache
    from ros2_pose.deploy.runner import BackendUnavailableError
    from ros2_pose.deploy import tensorrt_engine as te

    path = Path(args.engine)
    if not path.is_file():
        print(f"engine info: {path} does not exist", file=sys.stderr)
        return 2
    sidecar = EngineCache.sidecar_path(path)
    built = EngineCache.read_sidecar(path)
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    if built is None:
        print(f"  no readable sidecar {sidecar.name}: origin unknown")
    else:
        print(json.dumps(json.loads(sidecar.read_text(encoding="utf-8")), indent=2))
    try:
        trt = te.import_tensorrt()
        gpu = te.current_gpu_name()
    except BackendUnavailableError as exc:
        print(f"engine info: cannot load the engine here: {exc}", file=sys.stderr)
        return EXIT_NO_TENSORRT
    if built is not None:
        here = dataclasses.replace(built, tensorrt_version=trt.__version__, gpu_name=gpu)
        problems = here.differences(built)
        print("fits this machine" if not problems else "does NOT fit this machine:\n  " + "\n  ".join(problems))
    engine = te.deserialize_engine(path.read_bytes())
    if engine is None:
        print(f"TensorRT {trt.__version__} could not deserialize {path}", file=sys.stderr)
        return 1
    print(json.dumps(te.engine_summary(engine), indent=2))
    return 0
