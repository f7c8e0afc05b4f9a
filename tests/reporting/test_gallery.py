"""The errors gallery of the report: which test images it picks, its thumbnails, its links, and
the copies it writes for a run that wrote no heatmaps."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.reporting import gallery


def _row(path: str, defect: str, score: float) -> dict:
    return {"path": path, "label": str(int(defect != "good")), "defect": defect,
            "score": f"{score}"}


def test_sample_is_the_misses_per_defect_then_the_false_alarms():
    rows = ([_row(f"t/good/{i}.png", "good", s) for i, s in enumerate([1, 9, 3, 8, 2])]
            + [_row(f"t/cut/{i}.png", "cut", s) for i, s in enumerate([7, 2, 5, 4])]
            + [_row(f"t/bent/{i}.png", "bent", s) for i, s in enumerate([6, 0.5])])
    chosen = gallery.sample(rows, misses_per_defect=2, false_alarms=3)
    assert [(gallery.picture_name(r), r["score"], r["kind"]) for r in chosen] == [
        ("bent/1", 0.5, "miss"), ("bent/0", 6.0, "miss"),
        ("cut/1", 2.0, "miss"), ("cut/3", 4.0, "miss"),
        ("good/1", 9.0, "false alarm"), ("good/3", 8.0, "false alarm"),
        ("good/2", 3.0, "false alarm")]
    capped = gallery.sample(rows, misses_per_defect=2, false_alarms=3, max_shown=4)
    assert [gallery.picture_name(r) for r in capped] == ["bent/1", "good/1", "good/3", "good/2"]


@pytest.mark.parametrize("shape", [(300, 900), (40, 50)])
def test_thumbnail_is_a_jpeg_that_fits_and_is_never_enlarged(shape):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), np.uint8)
    jpeg = gallery.thumbnail(tf.io.encode_png(image).numpy(), (160, 320))
    assert jpeg[:2] == b"\xff\xd8"
    height, width = tf.io.decode_jpeg(jpeg).shape[:2]
    if shape == (300, 900):
        assert (height, width) == (107, 320)  # the aspect ratio kept
    else:
        assert (height, width) == shape


def test_href_is_relative_on_disk_and_the_url_elsewhere():
    assert gallery.href("/runs/a/carpet/heatmaps/cut/001.png", "/runs/a") == (
        "carpet/heatmaps/cut/001.png")
    assert gallery.href("/runs/a/carpet/x.png", "/tmp/out") == "../../runs/a/carpet/x.png"
    assert gallery.href("gs://b/runs/a/x.png", "/tmp/out") == "gs://b/runs/a/x.png"


def test_without_heatmaps_the_test_images_shown_are_copied_beside_the_report(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for defect, n in (("good", 8), ("cut", 5)):
        os.makedirs(tmp_path / "data" / defect)
        for i in range(n):
            path = str(tmp_path / "data" / defect / f"{i:03d}.png")
            with open(path, "wb") as f:
                f.write(tf.io.encode_png(rng.integers(0, 256, (24, 36, 3), np.uint8)).numpy())
            rows.append(_row(path, defect, float(i if defect == "good" else 10 - i)))
    rows.append(_row(str(tmp_path / "data" / "cut" / "gone.png"), "cut", -1.0))  # unreadable
    os.makedirs(tmp_path / "run" / "carpet")
    before = sorted(os.listdir(tmp_path))
    text = gallery.section(str(tmp_path / "run" / "carpet"), rows, 4.5, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == before  # nothing copied beside the report
    shown = ["cut/003.png", "cut/004.png"] + [f"good/{i:03d}.png" for i in range(2, 8)]
    for name in shown:  # each thumbnail links to the test image where it lies
        assert f'href="data/{name}"' in text
    assert text.count("<img") == 8 and "1 of the 9 chosen could not be shown" in text
    assert "good/007 · 7 · false alarm" in text and "good/002 · 2 · passed" in text
    assert "cut/004 · 6 · caught" in text and "every heatmap" not in text


def test_thumbnails_stop_at_the_byte_budget(tmp_path, monkeypatch):
    cdir = tmp_path / "carpet"
    os.makedirs(cdir / "heatmaps" / "good")
    rows = []
    for i in range(6):
        image = np.random.default_rng(i).integers(0, 256, (100, 200, 3), np.uint8)
        (cdir / "heatmaps" / "good" / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
        rows.append(_row(f"t/good/{i}.png", "good", float(i)))
    one = len(gallery.thumbnail((cdir / "heatmaps" / "good" / "0.png").read_bytes()))
    monkeypatch.setattr(gallery, "BUDGET_BYTES", int(2.5 * one))
    text = gallery.section(str(cdir), rows, None, str(tmp_path))
    assert text.count("<img") == 2 and "4 of the 6 chosen could not be shown" in text
