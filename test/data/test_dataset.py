"""DatasetWriter / ArrayDataset round trip, splits, and validation of damaged folders."""
import json

import numpy as np
import pytest

from ros2_pose.data.dataset import ArrayDataset, DatasetError, DatasetWriter, FieldSpec, SharedRows, make_splits


def write(folder, n=10):
    writer = DatasetWriter(folder, "toy", {"x": FieldSpec.of(np.float32, (2, 3)), "i": (np.int32, ())}, count=n + 2)
    for k in range(n):
        writer.append({"x": np.full((2, 3), k, np.float32), "i": k})
    return writer.finish(sources=[], parameters={"a": 1}, fractions=(0.6, 0.2, 0.2), guard=0, block_size=2)


def test_round_trip_truncates_unwritten_rows_and_reads_memory_mapped(tmp_path):
    manifest = write(tmp_path / "ds")
    assert manifest["count"] == 10 and manifest["fields"]["x"]["shape"] == [2, 3]
    ds = ArrayDataset(tmp_path / "ds", "all")
    assert len(ds) == 10 and ds[7]["x"].shape == (2, 3) and ds[7]["x"][0, 0] == 7 and ds[7]["i"] == 7
    assert isinstance(ds.arrays["x"], np.memmap)
    splits = [ArrayDataset(tmp_path / "ds", s, fields=["i"]) for s in ("train", "val", "test")]
    ids = sorted(int(d[k]["i"]) for d in splits for k in range(len(d)))
    assert ids == list(range(10)) and [len(d) for d in splits] == [6, 2, 2]
    torch = pytest.importorskip("torch")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch["x"].shape == (4, 2, 3)


def test_split_determinism_and_no_adjacent_leak():
    groups = np.arange(200)
    seqs = np.repeat([0, 1], 100)
    a = make_splits(groups, seqs, seed=3, guard=1, block_size=10)
    b = make_splits(groups, seqs, seed=3, guard=1, block_size=10)
    c = make_splits(groups, seqs, seed=4, guard=1, block_size=10)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    label = np.full(200, -1)
    for k, name in enumerate(("train", "val", "test")):
        label[a[name]] = k
    assert (label >= 0).sum() > 170 and len(a["val"]) > 0 and len(a["test"]) > 0
    for f in range(199):
        if seqs[f] == seqs[f + 1] and label[f] >= 0 and label[f + 1] >= 0:
            assert label[f] == label[f + 1], f"frames {f} and {f + 1} are neighbours in different splits"


def test_damaged_folders_give_clear_errors(tmp_path):
    write(tmp_path / "ds")
    with pytest.raises(DatasetError, match="not empty"):
        write(tmp_path / "ds")
    (tmp_path / "ds" / "stray.npy").write_bytes(b"")
    with pytest.raises(DatasetError, match="does not list"):
        ArrayDataset(tmp_path / "ds", "all")
    (tmp_path / "ds" / "stray.npy").unlink()
    np.save(tmp_path / "ds" / "x.npy", np.zeros((10, 3, 3), np.float32))
    with pytest.raises(DatasetError, match="shape"):
        ArrayDataset(tmp_path / "ds", "all")
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    manifest["fields"]["x"]["file"] = "../outside.npy"
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="outside"):
        ArrayDataset(tmp_path / "ds", "all", fields=["x"])
    manifest["fields"]["x"]["file"] = "x.npy"
    (tmp_path / "ds" / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "ds" / "i.npy").unlink()
    with pytest.raises(DatasetError, match="missing"):
        ArrayDataset(tmp_path / "ds", "all", fields=["i"])
    (tmp_path / "ds" / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="did not finish"):
        ArrayDataset(tmp_path / "ds", "all")


def test_shared_rows_gather_like_fancy_indexing_and_concatenate():
    source = np.arange(5 * 2 * 3).reshape(5, 2, 3)
    index = np.array([[0, 1, 2], [2, 3, 4], [4, 0, 0]])
    view = SharedRows(source, index)
    expected = source[index]
    assert view.shape == expected.shape and view.ndim == 4 and len(view) == 3 and view.dtype == source.dtype
    np.testing.assert_array_equal(view[np.array([2, 0])], expected[[2, 0]])
    np.testing.assert_array_equal(view[:, 1], expected[:, 1])
    np.testing.assert_array_equal(view[1], expected[1])
    np.testing.assert_array_equal(np.asarray(view, np.float32), expected.astype(np.float32))
    other = SharedRows(source[:2] + 100, np.array([[1, 1, 0]]))
    both = SharedRows.concatenate([view, other])
    np.testing.assert_array_equal(np.asarray(both), np.concatenate([expected, (source[:2] + 100)[[[1, 1, 0]]]]))
    with pytest.raises(DatasetError, match="outside"):
        SharedRows(source, np.array([[0, 5]]))
