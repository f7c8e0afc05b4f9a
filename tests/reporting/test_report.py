"""The HTML report: built from a small synthetic run, parsed, every embedded image decoded.

Always: the HTML parses, holds every section, embeds only PNG plots and JPEG thumbnails that
decode, links only to files that exist, and stays under 5 MB for a category with hundreds of
test images. Also, where a Chromium binary is on the PATH: headless Chromium renders it to a
screenshot without console errors (no Chromium is installed on the development machine, so
there only the parse-and-decode checks run).
"""

from __future__ import annotations

import base64
import csv
import html.parser
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from cutpaste_tf.reporting import report
from cutpaste_tf.training import learning

CATEGORIES = {"washer": "object", "fabric": "texture"}


def _png(seed: int, size: int = 32) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (size, size, 3), np.uint8)
    return tf.io.encode_png(image).numpy()


def _write_category(model_dir: str, name: str, seed: int) -> None:
    """The files launch.train leaves for one category, with made-up values."""
    cdir = os.path.join(model_dir, name)
    rng = np.random.default_rng(seed)
    defects = ["good"] * 10 + ["cut"] * 10 + ["hole"] * 10
    scores = np.concatenate([rng.normal(5, 1, 10), rng.normal(8, 2, 20)])
    os.makedirs(cdir)
    with open(os.path.join(cdir, "scores.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "defect", "score"])
        for i, (defect, score) in enumerate(zip(defects, scores)):
            writer.writerow([f"x/{defect}/{i:03d}.png", int(defect != "good"), defect,
                             f"{score:.6f}"])
            os.makedirs(os.path.join(cdir, "heatmaps", defect), exist_ok=True)
            with open(os.path.join(cdir, "heatmaps", defect, f"{i:03d}.png"), "wb") as g:
                g.write(_png(seed + i))
    threshold = {"method": "out_of_fold_quantile", "quantile": 0.95, "value": 6.5}
    learned = name != "fabric"  # fabric is the run that did not learn its proxy task
    accuracies = [0.4, 0.6, 0.8] if learned else [0.34, 0.35, 0.36]
    rows = [{"step": 10 * (i + 1), "accuracy": a, "accuracy_per_class": [a, a, a]}
            for i, a in enumerate(accuracies)]
    learning.write_curve(cdir, rows, ["normal", "cutpaste", "scar"])
    with open(os.path.join(cdir, "results.json"), "w") as f:
        json.dump({"category": name, "auroc": 0.9, "pixel_auroc": 0.8, "aupro": 0.5,
                   "threshold": threshold,
                   "learning": learning.check(rows, 30, 3)}, f)
    with open(os.path.join(cdir, "heatmaps", f"{name}_grid.png"), "wb") as f:
        f.write(_png(seed, 64))
    writer = tf.summary.create_file_writer(os.path.join(cdir, "logs", "train"))
    with writer.as_default():
        for step in range(1, 6):
            tf.summary.scalar("train/loss", 1.0 / step, step=step)
            tf.summary.scalar("train/accuracy", 0.5 + step / 20, step=step)
            tf.summary.scalar("train/learning_rate", 0.03 / step, step=step)
        views = tf.random.stateless_uniform([3, 16, 16, 3], [seed, 0])
        tf.summary.image("views/0_normal", views, step=0, max_outputs=3)
    writer.close()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    model_dir = str(tmp_path_factory.mktemp("run"))
    for seed, name in enumerate(CATEGORIES):
        _write_category(model_dir, name, seed)
    with open(os.path.join(model_dir, "results.md"), "w") as f:
        f.write("### Image AUROC (%)\n\n| Category | Ours | Paper |\n| --- | ---: | ---: |\n"
                "| washer | 90.0 | — |\n| **average** | 90.0 | 96.1 |\n")
    with open(os.path.join(model_dir, "results.json"), "w") as f:
        json.dump({"categories": {}}, f)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump({"train": {"task": "3way", "seed": 0}}, f)
    return model_dir


class _Page(html.parser.HTMLParser):
    """Collects headings, image sources and links of a page."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "src" in attrs:
            self.sources.append(attrs["src"])
        if "href" in attrs:
            self.links.append(attrs["href"])
        if "id" in attrs:
            self.ids.append(attrs["id"])


def _parse(path: str) -> tuple[str, _Page]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    page = _Page()
    page.feed(text)
    page.close()
    return text, page


def _decode(source: str) -> tf.Tensor:
    kind, data = source.split(",", 1)
    assert kind in ("data:image/png;base64", "data:image/jpeg;base64"), kind
    image = tf.io.decode_image(base64.b64decode(data, validate=True), expand_animations=False)
    assert image.shape[0] > 0 and image.shape[1] > 0
    return image


def _files_linked(path: str, page: _Page) -> list[str]:
    """The files a report links to (every link that is not to an anchor must exist)."""
    linked = [os.path.normpath(os.path.join(os.path.dirname(path), link))
              for link in page.links if not link.startswith("#")]
    missing = [p for p in linked if not os.path.exists(p)]
    assert not missing, missing
    return linked


def test_report_reads_on_its_own_and_every_image_decodes(model_dir):
    path = report.write_report(model_dir)
    assert path == os.path.join(model_dir, "report.html")
    text, page = _parse(path)
    assert {"results", "washer", "fabric", "settings", "hardware"} <= set(page.ids)
    for section in ("Results against the paper", "Scores and training",
                    "Augmented training views", "Errors", "Settings", "Hardware"):
        assert section in text
    assert "<table>" in text and "<b>average</b>" in text and '"task": "3way"' in text
    assert "<script" not in text and "url(" not in text
    # per category: proxy-task accuracy, ROC, histogram, curves (PNG), 3 views and the errors
    # (JPEG): 3 lowest-scoring of each of the 2 defect types and the 6 highest-scoring normals
    pngs = [s for s in page.sources if s.startswith("data:image/png")]
    jpegs = [s for s in page.sources if s.startswith("data:image/jpeg")]
    assert len(pngs) == len(CATEGORIES) * 4
    assert len(jpegs) == len(CATEGORIES) * (3 + 2 * 3 + 6)
    for source in page.sources:
        _decode(source)
    linked = _files_linked(path, page)
    # each thumbnail links to its full-size heatmap; the grid and the heatmap folder are linked
    heatmaps = os.path.join(model_dir, "washer", "heatmaps")
    assert sum(os.path.dirname(os.path.dirname(p)) == heatmaps for p in linked) == 3 * 2 + 6
    assert os.path.join(heatmaps, "washer_grid.png") in linked
    assert os.path.join(model_dir, "washer", "heatmaps") in linked


def test_report_shows_the_proxy_task_near_the_top_and_warns_about_a_run_that_did_not_learn(
        model_dir):
    text, _ = _parse(report.write_report(model_dir))
    training = text.index('id="training"')
    assert training < text.index('id="fabric"') and training < text.index('id="washer"')
    banner = text[text.index('class="warning"'):]
    banner = banner[:banner.index("</p>")]
    assert "Proxy task not learned" in banner and "fabric" in banner and "washer" not in banner
    assert "0.340 at step 10" in banner


def test_the_errors_shown_are_the_lowest_scoring_defects_and_highest_scoring_normals(model_dir):
    text, page = _parse(report.write_report(model_dir))
    section = text[text.index('id="washer"'):]
    section = section[:section.index("<h2", 10)]
    with open(os.path.join(model_dir, "washer", "scores.csv")) as f:
        rows = list(csv.DictReader(f))
    for defect, take, reverse in (("cut", 3, False), ("hole", 3, False), ("good", 6, True)):
        of_defect = sorted((r for r in rows if r["defect"] == defect),
                           key=lambda r: float(r["score"]), reverse=reverse)
        shown = [os.path.splitext(os.path.basename(r["path"]))[0] for r in of_defect[:take]]
        hidden = [os.path.splitext(os.path.basename(r["path"]))[0] for r in of_defect[take:]]
        assert all(f'heatmaps/{defect}/{n}.png"' in section for n in shown), (defect, shown)
        assert not any(f'heatmaps/{defect}/{n}.png"' in section for n in hidden), defect


def _noise_png(rng: np.random.Generator, height: int, width: int) -> bytes:
    """Worst case for image compression: every pixel random."""
    return tf.io.encode_png(rng.integers(0, 256, (height, width, 3), np.uint8)).numpy()


def test_report_stays_small_for_a_category_with_hundreds_of_test_images(tmp_path):
    """400 test images over 20 defect types, every heatmap a full-size picture of noise (the
    worst case for a JPEG) and a heatmap grid over 5 MB on its own: the report stays under
    5 MB, shows a bounded sample, and links every full-size picture it shows."""
    model_dir = str(tmp_path / "run")
    cdir = os.path.join(model_dir, "carpet")
    rng = np.random.default_rng(0)
    variants = [_noise_png(rng, 256, 512) for _ in range(4)]  # image | overlay at 256 px
    defects = ["good"] * 100 + [f"defect{d:02d}" for d in range(20) for _ in range(15)]
    os.makedirs(cdir)
    with open(os.path.join(cdir, "scores.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "defect", "score"])
        for i, defect in enumerate(defects):
            writer.writerow([f"/data/carpet/test/{defect}/{i:03d}.png", int(defect != "good"),
                             defect, f"{rng.normal(8 if defect != 'good' else 5):.6f}"])
            os.makedirs(os.path.join(cdir, "heatmaps", defect), exist_ok=True)
            with open(os.path.join(cdir, "heatmaps", defect, f"{i:03d}.png"), "wb") as g:
                g.write(variants[i % len(variants)])
    grid = _noise_png(rng, 1400, 1536)
    assert len(grid) > 5_000_000
    with open(os.path.join(cdir, "heatmaps", "carpet_grid.png"), "wb") as f:
        f.write(grid)
    with open(os.path.join(cdir, "results.json"), "w") as f:
        json.dump({"category": "carpet", "auroc": 0.9, "threshold": {"value": 6.5}}, f)

    path = report.write_report(model_dir)
    size = os.path.getsize(path)
    assert size < 5_000_000, size
    heatmap_bytes = sum(os.path.getsize(os.path.join(d, n))
                        for d, _, names in os.walk(os.path.join(cdir, "heatmaps")) for n in names)
    assert heatmap_bytes > 40 * size  # what embedding everything would have cost
    text, page = _parse(path)
    jpegs = [s for s in page.sources if s.startswith("data:image/jpeg")]
    assert len(jpegs) == report.gallery.MAX_SHOWN  # 20 x 3 misses + 6 false alarms, capped
    for source in jpegs:
        height, width = _decode(source).shape[:2]
        assert height <= 160 and width <= 320
    linked = _files_linked(path, page)
    assert os.path.join(cdir, "heatmaps", "carpet_grid.png") in linked
    assert sum("/heatmaps/good/" in p for p in linked) == report.gallery.FALSE_ALARMS
    assert "Of 400 test images (300 defective)" in text


def test_training_curves_and_views_come_from_the_event_files(model_dir):
    scalars, images = report.read_events(os.path.join(model_dir, "washer", "logs", "train"))
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5]
    assert scalars["train/loss"][1][1] == pytest.approx(0.5)
    assert len(images["views/0_normal"]) == 3


def test_launcher_writes_the_report_where_asked(model_dir, tmp_path, run_launcher, capsys):
    from launch import report as launcher

    out = str(tmp_path / "custom.html")
    status = run_launcher(launcher, f"--model_dir={model_dir}", f"--report_path={out}")
    printed, err = capsys.readouterr()
    assert status == 0, err[-3000:]
    assert f"Report: {out}" in printed and os.path.exists(out)
    assert run_launcher(launcher, f"--model_dir={tmp_path}") == 1  # no finished run there
    assert "holds no results.json of a finished run" in capsys.readouterr().err


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")
                         or shutil.which("google-chrome")),
                    reason="no Chromium binary on the PATH; the parse-and-decode test covers "
                    "the report without it")
def test_report_renders_in_headless_chromium(model_dir, tmp_path):
    browser = (shutil.which("chromium") or shutil.which("chromium-browser")
               or shutil.which("google-chrome"))
    path = report.write_report(model_dir, str(tmp_path / "report.html"))
    shot = tmp_path / "shot.png"
    result = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                             "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                             "--window-size=1280,2000", f"file://{path}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CONSOLE" not in result.stderr and "Uncaught" not in result.stderr, result.stderr
    assert tf.io.decode_png(shot.read_bytes()).shape[0] > 0
