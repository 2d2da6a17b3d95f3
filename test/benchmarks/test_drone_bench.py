"""bench drone: per-module rows for every network and backend, on the drone sample bag, with tiny real
(untrained) networks of both drone models; the cost of a network does not depend on its weights."""
import json

import pytest

from ros2_pose.benchmarks.drone import PER_FRAME, STAGES, STEM, benchmark
from ros2_pose.cli.main import main
from ros2_pose.deploy.model_spec import write_model_folder
from ros2_pose.samples import sample_bag
from ros2_pose.training.drone import build_network, drone_model_config, drone_model_info
from ros2_pose.training.tasks.drone import DEFAULTS

TINY = {"width": 4, "exchange_blocks": [1, 1], "units_per_branch": 1, "stage1_units": 1}


@pytest.fixture(scope="module")
def model_folders(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("drone_bench_models")
    folders = []
    for drone_model, backbone in (("drone_large", "hrnet"), ("drone_small", "higherhrnet")):
        model_cfg = {"backbone": backbone, "input_size": 32, "kwargs": TINY}
        folder = root / drone_model
        write_model_folder(folder, build_network(model_cfg, 10).eval(), drone_model_config(model_cfg))
        drone_model_info(dict(DEFAULTS, drone_model=drone_model, model=model_cfg)).write(folder)
        folders.append(folder)
    return folders


def test_module_rows_per_network_and_backend(model_folders):
    rows = benchmark([str(f) for f in model_folders], ["onnxruntime", "torch"], iterations=3, warmup=1,
                     bag=sample_bag("drone"))
    assert not [r for r in rows if "skipped" in r]
    for backend in ("onnxruntime", "torch"):
        for folder in model_folders:
            by_stage = {r["stage"]: r for r in rows if r["backend"] == backend and r["network"] == folder.name}
            for stage in STAGES:
                assert by_stage[stage]["n"] == 3 and 0 < by_stage[stage]["median_ms"] <= by_stage[stage]["p95_ms"]
            assert sum(by_stage[s]["share"] for s in STAGES) == pytest.approx(1.0)
            assert {"decode (center_of_mass)", "decode (soft_argmax)"} <= set(by_stage)
            assert (STEM in by_stage) == (backend == "torch")
            assert 0 <= by_stage["PnP"]["pnp_solved"] <= 3
        (frame,) = [r for r in rows if r["backend"] == backend and r["stage"] == PER_FRAME]
        assert frame["n"] == 3 and frame["median_ms"] > 0


def test_cli_prints_the_table_and_writes_json(model_folders, tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main(["bench", "drone", "--model", *map(str, model_folders), "--backend", "onnxruntime",
                 "--iters", "1", "--warmup", "0", "--json", str(out)]) == 0
    assert "backbone" in capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert {r["stage"] for r in rows} >= set(STAGES) | {"sum of modules", PER_FRAME}


def test_a_folder_without_drone_yaml_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    assert main(["bench", "drone", "--model", str(tmp_path / "model"), "--iters", "1"]) == 2
    assert "drone.yaml" in capsys.readouterr().out
