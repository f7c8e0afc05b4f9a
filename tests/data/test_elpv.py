"""ELPV solar cells: the seeded split, the PNGs in the MVTec layout, and the package loader."""

import json
import pathlib
import sys

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.data import DataError, decode, elpv, index_mvtec

# A fake dataset shaped like elpv_dataset.utils.load_dataset()'s: grey uint8 300x300 cells, the
# four probability levels, types "mono"/"poly".
PROBS = [0.0] * 12 + [1.0] * 4 + [1 / 3, 2 / 3] + [0.0] * 8 + [1.0] * 3 + [1 / 3]
TYPES = ["mono"] * 18 + ["poly"] * 12


def fake_dataset():
    images = np.random.default_rng(0).integers(0, 256, (len(PROBS), 300, 300), dtype=np.uint8)
    return images, np.array(PROBS), np.array(TYPES)


def test_split_is_seeded_disjoint_and_keeps_uncertain_cells_for_validation():
    _, probs, types = fake_dataset()
    splits = elpv.split_cells(probs, types, 0.25, seed=0)
    for cell_type, parts in splits.items():
        rows = {i for i in range(len(probs)) if types[i] == cell_type}
        normal = {i for i in rows if probs[i] == 0.0}
        assert set(parts["train"]) | set(parts["test_good"]) == normal
        assert not set(parts["train"]) & set(parts["test_good"])
        assert set(parts["test_defective"]) == {i for i in rows if probs[i] == 1.0}
        assert parts["validation_probable"] == [i for i in sorted(rows) if probs[i] == 2 / 3]
        assert parts["validation_possible"] == [i for i in sorted(rows) if probs[i] == 1 / 3]
        used = [set(v) for v in parts.values()]
        assert sum(map(len, used)) == len(set().union(*used)) == len(rows)  # disjoint, all
    assert [len(splits[t]["test_good"]) for t in elpv.CELL_TYPES] == [3, 2]  # 25% of 12 and 8
    assert elpv.split_cells(probs, types, 0.25, seed=0) == splits
    others = [elpv.split_cells(probs, types, 0.25, seed=s)["mono"]["test_good"] for s in (1, 2)]
    assert splits["mono"]["test_good"] not in others
    with pytest.raises(ValueError, match="test fraction must be in"):
        elpv.split_cells(probs, types, 1.0, seed=0)
    with pytest.raises(DataError, match="unknown cell type"):
        elpv.split_cells(probs, np.array(["mono"] * 29 + ["cigs"]), 0.25, seed=0)


@pytest.fixture()
def fake_package(monkeypatch):
    calls = []

    def load():
        calls.append(1)
        return fake_dataset()

    monkeypatch.setattr(elpv, "load_package", load)
    return calls


def test_prepare_writes_an_mvtec_layout_that_index_mvtec_reads(tmp_path, fake_package):
    data_dir = str(tmp_path / "elpv")
    manifest = elpv.prepare(data_dir, 0.25, seed=3)
    assert manifest["counts"]["mono"] == {"train": 9, "test_good": 3, "test_defective": 4,
                                          "validation_probable": 1, "validation_possible": 1}
    assert manifest["counts"]["poly"] == {"train": 6, "test_good": 2, "test_defective": 3,
                                          "validation_probable": 0, "validation_possible": 1}
    assert manifest["excluded_uncertain"] == 3 and manifest["split_seed"] == 3
    assert json.loads((tmp_path / "elpv" / "prepared.json").read_text()) == manifest
    images = fake_dataset()[0]
    for cell_type in elpv.CELL_TYPES:
        data = index_mvtec(data_dir, cell_type)
        assert data.kind == "object" and data.aligned
        assert len(data.train_files) == manifest["counts"][cell_type]["train"]
        assert data.test_labels.count(1) == manifest["counts"][cell_type]["test_defective"]
        assert data.defect_types == ["defective"]
        # A grey cell comes back from the pipeline's decoder as RGB with its exact pixels.
        path = data.test_files[-1]
        row = int(path[-8:-4]) - 1
        decoded = decode(tf.io.read_file(path)).numpy()
        np.testing.assert_array_equal(decoded, np.repeat(images[row][..., None], 3, axis=2))
        # The uncertain cells sit apart from train/ and test/, one folder per kind.
        for kind in elpv.UNCERTAIN:
            folder = tmp_path / "elpv" / cell_type / "validation" / kind
            written = sorted(p.name for p in folder.glob("*.png"))
            assert len(written) == manifest["counts"][cell_type][f"validation_{kind}"]
            assert not set(written) & {pathlib.Path(f).name for f in
                                       data.train_files + data.test_files}
    assert [p.name for p in (tmp_path / "elpv/mono/validation/probable").iterdir()] == [
        "cell0018.png"]  # row 17 of PROBS holds the one mono 2/3 cell
    # Prepared once: the same settings reuse it, other settings are refused.
    assert elpv.prepare(data_dir, 0.25, seed=3) == manifest and len(fake_package) == 1
    with pytest.raises(DataError, match=r"prepared with other settings \(split_seed: prepared 3, "
                                        r"asked 4\)"):
        elpv.prepare(data_dir, 0.25, seed=4)


def test_a_failed_preparation_leaves_nothing(tmp_path, monkeypatch):
    def broken():
        images, probs, types = fake_dataset()
        return images[:, :, :, None], probs, types  # a wrong shape, found after tmp is made

    monkeypatch.setattr(elpv, "load_package", broken)
    with pytest.raises(DataError, match=r"expected uint8 images \[N, H, W\]"):
        elpv.prepare(str(tmp_path / "elpv"), 0.25, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "elpv_dataset", None)
    monkeypatch.setitem(sys.modules, "elpv_dataset.utils", None)
    with pytest.raises(DataError, match="pip install elpv-dataset"):
        elpv.prepare(str(tmp_path / "elpv"), 0.25, seed=0)


def test_the_real_package_split():
    """The installed package (pip install elpv-dataset; 90 MB, an optional extra)."""
    # elpv-dataset is in the test extra (setup.py): this must run, not skip.
    import inspect  # noqa: E401
    import os

    from elpv_dataset.utils import load_dataset
    labels = os.path.join(os.path.dirname(inspect.getfile(load_dataset)), "data", "labels.csv")
    table = np.genfromtxt(labels, dtype=["|S19", "<f8", "|S4"], names=["path", "p", "type"])
    probs, types = table["p"], np.char.decode(table["type"])
    assert len(probs) == 2624
    splits = elpv.split_cells(probs, types, 0.25, seed=0)
    counts = {t: {k: len(v) for k, v in parts.items()} for t, parts in splits.items()}
    assert counts == {"mono": {"train": 441, "test_good": 147, "test_defective": 313,
                               "validation_probable": 56, "validation_possible": 117},
                      "poly": {"train": 690, "test_good": 230, "test_defective": 402,
                               "validation_probable": 50, "validation_possible": 178}}


def test_launch_train_prepares_and_indexes_both_cell_types(tmp_path, fake_package, parse_flags):
    from cutpaste_tf.pipeline import inputs
    from launch import configs

    parse_flags("--flagfile=configs/elpv_cpu.flags", f"--data_dir={tmp_path / 'elpv'}",
                "--split_seed=5", "--heldout_fraction=0.5")
    categories = inputs.resolve_categories(configs.input_spec())
    assert [c.name for c in categories] == ["mono", "poly"]
    assert [c.test_labels.count(0) for c in categories] == [6, 4]  # half of 12 and 8 normal
    manifest = json.loads((tmp_path / "elpv" / "prepared.json").read_text())
    assert manifest["split_seed"] == 5 and manifest["test_fraction"] == 0.5


def test_launch_train_refuses_a_bad_heldout_fraction_before_loading(tmp_path, fake_package,
                                                                    parse_flags):
    from cutpaste_tf.pipeline import inputs
    from launch import configs

    parse_flags("--flagfile=configs/elpv_cpu.flags", f"--data_dir={tmp_path / 'elpv'}",
                "--heldout_fraction=1")
    with pytest.raises(ValueError, match=r"heldout_fraction must be in \(0, 1\), got 1"):
        inputs.resolve_categories(configs.input_spec())
    assert not fake_package and not (tmp_path / "elpv").exists()
