"""`--device` of the trainers that take it (dolly pose network and detector, bpnet): one parser of
the name, and a loud refusal of CUDA where PyTorch has none, before any data is read."""
import pytest
import torch

from ros2_pose.cli.main import main
from ros2_pose.training.loop import training_device


def test_device_names():
    assert training_device(None) == torch.device("cpu")
    assert training_device(" CPU ") == torch.device("cpu")
    assert training_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "gpu0", "meta"):
        with pytest.raises(ValueError, match="expected cpu, cuda, cuda:N or auto"):
            training_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the refusal is for machines without")
def test_cuda_without_cuda_is_refused_before_the_run_starts(tmp_path, capsys):
    with pytest.raises(ValueError, match="PyTorch sees no CUDA device here"):
        training_device("cuda:0")
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match="--device cuda: PyTorch sees no CUDA device here"):
        main(["train", "dolly", "--data", str(tmp_path / "no_dataset"), "--out", str(out), "--device", "cuda"])
    assert not out.exists()
    assert main(["bpnet", "train", "-e", str(tmp_path / "no_spec.yaml"), "-r", str(out), "--device", "cuda"]) != 0
    assert "PyTorch sees no CUDA device here" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_index_is_checked():
    with pytest.raises(ValueError, match="CUDA device"):
        training_device(f"cuda:{torch.cuda.device_count()}")
    assert training_device("cuda:0") == torch.device("cuda:0")
