"""The drift study: which choices hold up when the capture shifts (docs/learning.md, point 16).

Each cell of the budget study (:mod:`cutpaste_tf.analysis.budget_study`: a family, an arm, a
budget, a seed; trained with a fifth of its normal images held out) is judged here twice: with
the density the run fitted, and with the density refitted on :data:`COPIES` colour-jittered
copies of each training image too (``--density_augment_copies``). For each, with the threshold
at the 0.95 quantile of the held-out normals' scores under that density, and the labelled
defects kept out of the test set (the family's yardstick kinds) as anomalies:

- ``validation_auroc``: held-out normals against the defects (the budget study's yardstick);
- ``drift_auroc``: the held-out normals 8 % darker against the defects as captured (the
  simulated drift, on validation data);
- ``false_alarm_10``: the largest share of held-out normals above the threshold under a ±10 %
  brightness or contrast shift; and the whole stress test (:mod:`cutpaste_tf.evaluation.robustness`);
- read after, never chosen on: the test AUROC and the test AUROC with the test normals 8 %
  darker (``test_auroc``, ``drift_test_auroc``).

A cell's figures go to ``<cell>/drift_study.json``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from cutpaste_tf import files, rundir
from cutpaste_tf.analysis import budget_study as study
from cutpaste_tf.analysis import labelled_validation as lv
from cutpaste_tf.data import index, layouts
from cutpaste_tf.evaluation import evaluate, metrics, robustness
from cutpaste_tf.evaluation import threshold as threshold_lib
from cutpaste_tf.ops import shifts
from cutpaste_tf.pipeline import runner, stress, trained

RESULT_FILE = "drift_study.json"
COPIES = 4  # jittered copies per training image for the "augmented" density
COPY_JITTER = (0.1, 0.1, 0.1, 0.0)
DENSITIES = ("run", "augmented")
ARMS = ("cpu_choices", "jitter", "preaug", "standardize", "jitter_strong")
# The paper's side of each comparison (point 16): the whole-image jitter of Appendix A.1.
PAPER_ARM = "jitter"


def yardstick_defects(data_dir: str, category: str, yardstick: str) -> list[str]:
    """The labelled defects kept out of the test set that the family's yardstick reads:
    every kind ("all"), or one kind (ELPV's "probable")."""
    kinds = lv.defect_kinds(os.path.join(data_dir, category, index.VALIDATION_FOLDER))
    if yardstick == "all":
        return [p for paths in kinds.values() for p in paths]
    return list(kinds[yardstick])


def _scorer(model, density, feature: str, batch: int) -> Callable[[np.ndarray], np.ndarray]:
    def score(images: np.ndarray) -> np.ndarray:
        features = evaluate.embed_images(model, images, feature, batch)
        return density.score(tf.constant(features, tf.float32)).numpy()
    return score


def evaluate_cell(model_dir: str, family: str, data_root: str,
                  densities: Sequence[str] = DENSITIES) -> dict:
    """The figures of one finished cell (see the module's docstring); writes them into
    ``<model_dir>/drift_study.json`` and returns them."""
    spec = study.FAMILIES[family]
    category, data_dir = spec["category"], os.path.join(data_root, spec["data"])
    config = rundir.load_run_config(model_dir)
    data = layouts.index_layout("mvtec", data_dir, category)
    train_data, held = runner.hold_out(data, config)
    model, run_density = trained.load_trained(model_dir, category, config)
    batch, feature = config.eval_batch_size, config.density.feature
    normal = stress.load_images(list(held), config)
    defects = stress.load_images(yardstick_defects(data_dir, category, spec["yardstick"]), config)
    labels = np.asarray(data.test_labels)
    test_images = stress.load_images(list(data.test_files), config)
    out: dict = {"family": family, "num_held_out": len(held), "num_defects": len(defects)}
    for name in densities:
        density = run_density
        if name == "augmented":
            dcfg = dataclasses.replace(config.density, augment_copies=COPIES,
                                       augment_jitter=COPY_JITTER)
            size = config.train.image_size
            clean = evaluate.embed(model, train_data.train_files, size, feature, batch)
            copies = evaluate.embed_jittered(model, train_data.train_files, size, feature,
                                             COPIES, COPY_JITTER, config.train.seed, batch)
            density = evaluate.fit_features(
                np.concatenate([clean[:, None], copies.transpose(1, 0, 2)], axis=1), dcfg)
        score = _scorer(model, density, feature, batch)
        normals = robustness.Normals(normal, np.zeros(len(normal), np.int64), [score],
                                     "held-out")
        cut = threshold_lib.quantile_threshold(normals.score(normal), 0.95)
        result = robustness.stress_test(normals, defects, cut.value, shifts.STRESS_SHIFTS,
                                        config.train.seed, batch)
        rows = {r["shift"]: r for r in result["rows"]}
        test_scores = normals.score(test_images)
        darker = normals.score(np.concatenate([
            shifts.apply_shift(test_images[labels == 0][s:s + batch], shifts.SIMULATED_DRIFT)
            .numpy() for s in range(0, int((labels == 0).sum()), batch)]))
        drift_scores = np.r_[darker, test_scores[labels == 1]]
        drift_labels = np.r_[np.zeros(len(darker)), np.ones(int(labels.sum()))]
        out[name] = {"validation_auroc": rows["none"]["auroc"],
                     "drift_auroc": rows[shifts.SIMULATED_DRIFT.name]["auroc"],
                     "false_alarm_10": result["summary"]["worst_false_alarm_10"],
                     "threshold": cut.value, "stress": result,
                     "test_auroc": metrics.auroc(labels, test_scores),
                     "drift_test_auroc": metrics.auroc(drift_labels, drift_scores)}
    files.write_json(os.path.join(model_dir, RESULT_FILE), out)
    return out


def read_cell(model_dir: str) -> Optional[dict]:
    """A cell's drift figures, or None before :func:`evaluate_cell` ran on it."""
    path = os.path.join(model_dir, RESULT_FILE)
    return files.read_json(path) if os.path.exists(path) else None


def collect(study_dir: str, steps: int = 600) -> list[dict]:
    """One record per (cell, density) with drift figures: family, arm, seed, density, the
    figures, and the cell's proxy accuracy at the end."""
    records = []
    for cell in study.collect(study_dir):
        if cell["steps"] != steps or cell["arm"] not in ARMS:
            continue
        figures = read_cell(study.cell_dir(study_dir, cell["family"], cell["arm"], steps,
                                           cell["seed"]))
        for density in DENSITIES if figures else ():
            if density in figures:
                f = figures[density]
                records.append({
                    "family": cell["family"], "arm": cell["arm"], "seed": cell["seed"],
                    "density": density, "final_accuracy": cell["final_accuracy"],
                    **{k: f[k] for k in ("validation_auroc", "drift_auroc", "false_alarm_10",
                                         "test_auroc", "drift_test_auroc")}})
    return records


def paired(records: Sequence[dict], key: str, arm: str, density: str = "run",
           base_arm: str = PAPER_ARM, base_density: str = "run") -> dict:
    """``key`` of (``arm``, ``density``) minus that of (``base_arm``, ``base_density``), paired
    by family and seed: mean, standard error (0 for one pair), n and the pairs."""
    by = {(r["family"], r["seed"], r["arm"], r["density"]): r for r in records}
    pairs = []
    for (family, seed, a, d), r in sorted(by.items()):
        base = by.get((family, seed, base_arm, base_density))
        if a == arm and d == density and base is not None and (a, d) != (base_arm, base_density):
            pairs.append({"family": family, "seed": seed, "difference": r[key] - base[key]})
    mean, se = metrics.mean_and_stderr([p["difference"] for p in pairs]) if pairs else (None, None)
    return {"mean": mean, "se": se, "n": len(pairs), "pairs": pairs}


def decide(records: Sequence[dict], arm: str, density: str = "run", z: float = 2.0,
           min_seeds: int = 3, min_families: int = 2) -> dict:
    """The rule, written before the runs (docs/learning.md, point 16): ``arm`` with ``density``
    replaces the paper's side (:data:`PAPER_ARM`, the run's density) only when, over at least
    ``min_seeds`` seeds on each of ``min_families`` families, its drift AUROC is higher by more
    than ``z`` standard errors of the paired differences and its validation AUROC is not lower
    by more than ``z`` of them; otherwise the paper's side stays ("paper"), or "undecided"
    with too few cells."""
    drift = paired(records, "drift_auroc", arm, density)
    plain = paired(records, "validation_auroc", arm, density)
    seeds: dict[str, int] = {}
    for p in drift["pairs"]:
        seeds[p["family"]] = seeds.get(p["family"], 0) + 1
    if sum(n >= min_seeds for n in seeds.values()) < min_families or drift["se"] is None:
        return {"verdict": "undecided", "drift": drift, "plain": plain}
    better = drift["mean"] > z * drift["se"] and drift["mean"] > 0
    worse = plain["mean"] < 0 and -plain["mean"] > z * plain["se"]
    return {"verdict": "departure" if better and not worse else "paper", "drift": drift,
            "plain": plain}


def _stat(records: Sequence[dict], key: str) -> str:
    values = [r[key] for r in records]
    return study.points(*metrics.mean_and_stderr(values)) if values else "–"


def table_markdown(records: Sequence[dict]) -> str:
    """Per family (and both together), arm and density: seeds, proxy accuracy, validation AUROC,
    drift AUROC, worst ±10 % false alarms, then the test AUROCs read after; mean ± s.e. over
    seeds. Then each alternative against the paper's side by the rule."""
    lines = ["| family | arm | density | seeds | accuracy | validation AUROC | drift AUROC "
             "(normals 8% darker) | ±10% lighting: normals flagged % | test AUROC | test AUROC, "
             "normals 8% darker |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: |"]
    families = sorted({r["family"] for r in records})
    for family in [*families, "both"]:
        for arm in ARMS:
            for density in DENSITIES:
                cells = [r for r in records if r["arm"] == arm and r["density"] == density
                         and (family == "both" or r["family"] == family)]
                if not cells or (family == "both" and len(families) < 2):
                    continue
                acc = np.mean([r["final_accuracy"] for r in cells])
                lines.append(f"| {family} | {arm} | {density} | {len(cells)} | {acc:.3f} | "
                             + " | ".join(_stat(cells, k) for k in (
                                 "validation_auroc", "drift_auroc", "false_alarm_10",
                                 "test_auroc", "drift_test_auroc")) + " |")
    lines += ["", f"Against the paper's side (`{PAPER_ARM}`, the run's density), paired by "
              "family and seed (points; rule of point 16):", "",
              "| alternative | pairs | drift AUROC difference | validation AUROC difference | "
              "verdict |", "| --- | ---: | ---: | ---: | --- |"]
    for arm in ARMS:
        for density in DENSITIES:
            if (arm, density) == (PAPER_ARM, "run"):
                continue
            d = decide(records, arm, density)
            if not d["drift"]["n"]:
                continue
            lines.append(f"| {arm}, {density} density | {d['drift']['n']} | "
                         f"{study.points(d['drift']['mean'], d['drift']['se'], True)} | "
                         f"{study.points(d['plain']['mean'], d['plain']['se'], True)} | "
                         f"{d['verdict']} |")
    return "\n".join(lines) + "\n"
