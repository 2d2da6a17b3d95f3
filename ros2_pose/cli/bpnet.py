"""`ros2-pose bpnet <task>`: BodyPoseNet's workflow - dataset_convert, train, evaluate, inference,
prune, export (the TLT `bpnet` tasks, with the same option names where they make sense here).

Models are ros2_pose model folders (model.pt + model.yaml [+ model.onnx]); nothing is encrypted,
so there is no `-k/--key`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def register(parser) -> None:
    sub = parser.add_subparsers(dest="task", metavar="<task>", required=True)

    convert = sub.add_parser("dataset_convert", help="COCO person keypoints -> training dataset folder")
    convert.add_argument("-d", "--dataset_spec", required=True, help="dataset spec (JSON or YAML)")
    convert.add_argument("-o", "--output_filename", required=True, help="output dataset folder (new or empty)")
    convert.add_argument("-m", "--mode", default="train", choices=("train", "test"))
    convert.add_argument("--generate_masks", action="store_true", help="also save unlabelled-people masks as PNGs")
    convert.add_argument("--check_files", action="store_true", help="check every image exists first")
    convert.set_defaults(func=run_dataset_convert)

    train = sub.add_parser("train", help="train BodyPoseNet (resumes from the results folder's last checkpoint)")
    train.add_argument("-e", "--experiment_spec_file", required=True, help="training spec YAML")
    train.add_argument("-r", "--results_dir", required=True, help="run folder: checkpoints, curves, model/")
    train.add_argument("--device", default="cpu",
                       help="where the network trains: cpu, cuda, cuda:N, or auto (CUDA when available); "
                            "samples are made on the CPU and copied over")
    train.set_defaults(func=run_train)

    for name, helptext in (("inference", "detect people in images; writes detection.json"),
                           ("evaluate", "COCO keypoint AP/AR on the dataset spec's test_data")):
        task = sub.add_parser(name, help=helptext)
        task.add_argument("-i", "--inference_spec", required=True, help="inference spec YAML")
        task.add_argument("-m", "--model_filename", help="model folder (overrides the spec's model_path)")
        task.add_argument("-r", "--results_dir", required=True, help="output folder")
        task.add_argument("--backend", default="torch", choices=("torch", "onnxruntime", "tensorrt"),
                          help="inference backend (ONNX/TensorRT need keep_aspect_ratio_mode pad_image_input)")
        if name == "inference":
            task.add_argument("--input_type", required=True, choices=("image", "dir", "json"))
            task.add_argument("--input", required=True, help="an image, a folder of images or a COCO JSON")
            task.add_argument("--image_root_path", help="folder the JSON's file names are relative to")
            task.add_argument("--dump_visualizations", action="store_true",
                              help="save annotated images to <results_dir>/images_annotated")
            task.set_defaults(func=run_inference)
        else:
            task.add_argument("-d", "--dataset_spec", required=True, help="dataset spec; its test_data is used")
            task.set_defaults(func=run_evaluate)

    prune = sub.add_parser("prune", help="norm-based filter pruning into a smaller model folder")
    prune.add_argument("-m", "--model", required=True, help="model folder to prune")
    prune.add_argument("-o", "--output_file", required=True, help="output model folder")
    prune.add_argument("-n", "--normalizer", default="max", choices=("max", "L2"))
    prune.add_argument("-eq", "--equalization_criterion", default="union",
                       choices=("union", "intersection", "arithmetic_mean", "geometric_mean"))
    prune.add_argument("-pg", "--pruning_granularity", type=int, default=8)
    prune.add_argument("-pth", "--pruning_threshold", type=float, default=0.1)
    prune.add_argument("-nf", "--min_num_filters", type=int, default=16)
    prune.add_argument("-el", "--excluded_layers", nargs="*", default=[])
    prune.set_defaults(func=run_prune)

    export = sub.add_parser("export", help="write model.onnx at a chosen input size and check it with ONNX Runtime")
    export.add_argument("-m", "--model", required=True, help="trained model folder")
    export.add_argument("-o", "--output_file", required=True, help="output model folder (model.pt/yaml/onnx)")
    export.add_argument("-d", "--input_dims", default=None, help="H,W,C of the network input (default: as trained)")
    export.add_argument("--opset", type=int, default=17)
    export.add_argument("--output_stage", type=int, default=None, help="stage whose maps the ONNX outputs (default last)")
    export.set_defaults(func=run_export)


def _fail(message: str) -> int:
    print(f"bpnet: {message}", file=sys.stderr)
    return 2


def run_dataset_convert(args) -> int:
    from ros2_pose.data.body_dataset import DatasetSpecError, convert_body_dataset, load_dataset_spec
    from ros2_pose.data.dataset import DatasetError

    try:
        spec = load_dataset_spec(args.dataset_spec)
        manifest = convert_body_dataset(spec, args.output_filename, mode=args.mode, generate_masks=args.generate_masks,
                                        check_files=args.check_files)
    except (DatasetSpecError, DatasetError, ValueError) as exc:
        return _fail(f"dataset_convert failed: {exc}")
    print(f"wrote {manifest['count']} samples to {args.output_filename} (splits {manifest['splits']})")
    return 0


def run_train(args) -> int:
    from ros2_pose.training.bodypose import DEFAULTS, train_bodypose
    from ros2_pose.training.loop import training_device
    from ros2_pose.training.run import ConfigError, load_config, resolve_config_model

    try:
        device = training_device(args.device)  # before anything is read: CUDA where there is none fails here
        config = load_config(args.experiment_spec_file, DEFAULTS)
        base = Path(args.experiment_spec_file).parent
        if config["data"]:  # one folder or a list, relative to the spec's folder
            from ros2_pose.training.bodypose import dataset_folders

            folders = [f if Path(f).is_absolute() else str(base / f) for f in dataset_folders(config["data"])]
            config["data"] = folders[0] if isinstance(config["data"], (str, Path)) else folders
        if config["pretrained_weights"]:  # a shipped model's name or a path inside the spec's folder
            config["pretrained_weights"] = str(resolve_config_model(config["pretrained_weights"], base,
                                                                 key="pretrained_weights"))
        train_bodypose(config, args.results_dir, device=device)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        return _fail(f"train failed: {exc}")
    print(f"model written to {Path(args.results_dir) / 'model'}")
    return 0


def _load_inference(args):
    """(config, predict) from the inference spec and the model folder."""
    import torch
    import yaml

    from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model
    from ros2_pose.pipelines.body_pose import BodyPoseConfigError, BodyPoseInferenceConfig

    spec_path = Path(args.inference_spec)
    if not spec_path.is_file():
        raise FileNotFoundError(f"no inference spec {spec_path}")
    data = yaml.safe_load(spec_path.read_text()) or {}
    config = BodyPoseInferenceConfig.from_dict(data)
    model_path = args.model_filename or data.get("model_path")
    if not model_path:
        raise BodyPoseConfigError("no model: pass -m/--model_filename or set model_path in the inference spec")
    if args.model_filename:
        model_path = Path(args.model_filename)
    else:  # from the spec: a shipped model's name or a folder inside the spec's folder
        from ros2_pose.training.run import ConfigError, resolve_config_model

        try:
            model_path = resolve_config_model(model_path, spec_path.parent, key="model_path")
        except ConfigError as exc:
            raise BodyPoseConfigError(str(exc)) from None
    spec = ModelSpec.from_folder(model_path)
    if args.backend == "torch":
        model = build_torch_model(spec.load_config(), spec.require("weights"))
        stages = model.stages
        stage = config.output_stage_to_use or stages
        if stage > stages:
            raise BodyPoseConfigError(f"output_stage_to_use {stage}, but the model has {stages} stages")

        def predict(batch):
            with torch.no_grad():
                heat, paf = model.forward_stages(torch.from_numpy(batch))[stage - 1]
            return heat.numpy(), paf.numpy()
        return config, predict
    from ros2_pose.deploy.runner import create_runner
    from ros2_pose.pipelines.body_pose import require_fixed_input, runner_predictor

    if config.output_stage_to_use is not None:
        raise BodyPoseConfigError("output_stage_to_use needs the torch backend (export with --output_stage instead)")
    require_fixed_input(config, tuple(spec.load_config().inputs[0].shape[2:4]), args.backend)
    return config, runner_predictor(create_runner(spec, backend=args.backend))


def _read_rgb(path: Path):
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _infer_images(items, config, predict, results_dir: Path, visualize: bool) -> list[dict]:
    """items: (image_id, path) pairs -> COCO results; annotated images when `visualize`."""
    import cv2

    from ros2_pose.pipelines.body_pose import coco_results, draw_people, estimate_people

    results = []
    for image_id, path in items:
        rgb = _read_rgb(path)
        people = estimate_people(predict, rgb, config)
        for entry in coco_results(people, image_id):
            results.append(dict(entry, file_name=path.name))
        if visualize:
            out = results_dir / "images_annotated"
            out.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out / path.name), cv2.cvtColor(draw_people(rgb, people), cv2.COLOR_RGB2BGR))
    return results


def run_inference(args) -> int:
    from ros2_pose.pipelines.body_pose import write_detections
    from ros2_pose.resources import resolve_inside

    try:
        config, predict = _load_inference(args)
        source = Path(args.input)
        if args.input_type == "image":
            items = [(0, source)]
        elif args.input_type == "dir":
            if not source.is_dir():
                raise FileNotFoundError(f"--input {source} is not a folder")
            items = list(enumerate(sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)))
        else:
            data = json.loads(source.read_text())
            root = Path(args.image_root_path) if args.image_root_path else source.parent
            images = data["images"] if isinstance(data, dict) else data
            items = [(int(im["id"]), resolve_inside(root, im["file_name"])) for im in images]
        if not items:
            raise FileNotFoundError(f"no images in {source}")
        results_dir = Path(args.results_dir)
        results = _infer_images(items, config, predict, results_dir, args.dump_visualizations)
        path = write_detections(results, results_dir / "detection.json")
    except (FileNotFoundError, ValueError, KeyError) as exc:
        return _fail(f"inference failed: {exc}")
    print(f"{len(results)} people in {len(items)} images -> {path}")
    return 0


def run_evaluate(args) -> int:
    from ros2_pose.data.body_dataset import load_dataset_spec
    from ros2_pose.evaluation.coco_keypoints import evaluate_keypoints
    from ros2_pose.pipelines.body_pose import write_detections
    from ros2_pose.resources import resolve_inside

    try:
        config, predict = _load_inference(args)
        paths = load_dataset_spec(args.dataset_spec).data("test")
        ground_truth = json.loads(paths.annotations.read_text())
        items = [(int(im["id"]), resolve_inside(paths.images, im["file_name"])) for im in ground_truth["images"]]
        results_dir = Path(args.results_dir)
        results = _infer_images(items, config, predict, results_dir, False)
        write_detections(results, results_dir / "detection.json")
        metrics = evaluate_keypoints(ground_truth, [{k: v for k, v in r.items() if k != "file_name"} for r in results])
    except (FileNotFoundError, ValueError, KeyError) as exc:
        return _fail(f"evaluate failed: {exc}")
    (results_dir / "results.json").write_text(json.dumps(metrics, indent=2))
    for name, value in metrics.items():
        print(f"  {name:10s} {value:.4f}")
    return 0


def run_prune(args) -> int:
    from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model, write_model_folder
    from ros2_pose.pruning.filter_pruning import PruningError, PruningOptions, prune_model
    from ros2_pose.training.bodypose import model_config_for

    try:
        spec = ModelSpec.from_folder(args.model)
        config = spec.load_config()
        model = build_torch_model(config, spec.require("weights"))
        options = PruningOptions(args.normalizer, args.equalization_criterion, args.pruning_granularity,
                                 args.pruning_threshold, args.min_num_filters, tuple(args.excluded_layers))
        pruned, report = prune_model(model, options)
        input_hw = tuple(config.inputs[0].shape[2:4])
        write_model_folder(args.output_file, pruned, model_config_for(pruned, input_hw), export=False)
    except (PruningError, FileNotFoundError, ValueError) as exc:
        return _fail(f"prune failed: {exc}")
    (Path(args.output_file) / "pruning_report.json").write_text(json.dumps(report, indent=2))
    ratio = report["parameters_after"] / report["parameters_before"]
    print(f"parameters {report['parameters_before']} -> {report['parameters_after']} ({ratio:.1%}); "
          f"retrain with pretrained_weights: {args.output_file} and load_graph: true")
    return 0


def run_export(args) -> int:
    from ros2_pose.deploy.model_spec import ModelSpec, build_torch_model, write_model_folder
    from ros2_pose.models.bodypose import BodyPoseNet
    from ros2_pose.training.bodypose import model_config_for

    try:
        spec = ModelSpec.from_folder(args.model)
        config = spec.load_config()
        model = build_torch_model(config, spec.require("weights"))
        if args.input_dims:
            dims = [int(v) for v in args.input_dims.split(",")]
            if len(dims) != 3 or dims[2] != 3 or dims[0] % 8 or dims[1] % 8:
                raise ValueError(f"--input_dims must be H,W,3 with H and W multiples of 8, got {args.input_dims}")
            input_hw = (dims[0], dims[1])
        else:
            input_hw = tuple(config.inputs[0].shape[2:4])
        if args.output_stage is not None:
            model = BodyPoseNet(**dict(model.kwargs, output_stage=args.output_stage)).eval()
            model.load_state_dict(build_torch_model(config, spec.require("weights")).state_dict())
        parity = write_model_folder(args.output_file, model, model_config_for(model, input_hw), opset=args.opset)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(f"export failed: {exc}")
    print(f"wrote {Path(args.output_file) / 'model.onnx'}; ONNX Runtime vs torch max abs error "
          + ", ".join(f"{k} {v:.2e}" for k, v in parity.items()))
    return 0
