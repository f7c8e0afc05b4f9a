"""The budget-scaling study: each departure from the paper against the same run without it, at
budgets that grow about 4x, on several families of images and seeds, judged without test labels.

A cell is one training run: (family, arm, steps, seed), trained on the family's normal images
with a fifth held out (``--val_fraction=0.2``) and scored on labelled defects kept apart from the
test set (``launch.validate``). Its model dir is ``<study_dir>/<family>/<arm>/steps_<N>/seed_<k>``.
This module holds the study's definition (arms, families), the carving of a validation set out of
a test set, and the reading and summarising of finished cells; ``launch.budget_study`` runs them.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from typing import Optional, Sequence

import numpy as np

from cutpaste_tf import files, plots
from cutpaste_tf.data import index
from cutpaste_tf.evaluation import metrics

# The choices the CPU-budget configs made before the drift study (point 16): configs/
# cpu_choices.flags' one 512 head layer and zero classifier, with no translation and no
# whole-image jitter, pinned so that the study's cells keep their meaning whatever that file
# holds now. Each arm below changes one of them back to what the paper or its authors state.
BASELINE = "cpu_choices"
BASE_FLAGS = ("--flagfile=configs/cpu_choices.flags", "--translate=0", "--jitter=0,0,0,0")
ARMS: dict[str, tuple[str, ...]] = {
    BASELINE: (),
    # Appendix A.1's whole-image colour jitter (strength not given: 0.1 of brightness, contrast
    # and saturation, as configs/3way.flags).
    "jitter": ("--jitter=0.1,0.1,0.1,0",),
    # Appendix A.1's random translation (size not given: up to 1/16 of the image).
    "translate": ("--translate=0.0625",),
    # The authors' DROC head: eight 512 Dense-BN-ReLU layers, a linear 128 layer, Keras'
    # default (Glorot) classifier.
    "authors_head": ("--head_widths=512,512,512,512,512,512,512,512", "--head_embedding=128",
                     "--classifier_init=glorot_uniform"),
    # The classifier's initialisation alone (one 512 layer, Glorot instead of zeros).
    "glorot_classifier": ("--classifier_init=glorot_uniform",),
}
# Everything the paper and its authors state at once: configs/3way.flags.
ARMS["paper"] = ARMS["jitter"] + ARMS["translate"] + ARMS["authors_head"]
# The drift arms (docs/learning.md, point 16): Appendix A.1's whole pre-augmentation (jitter and
# translation) with the CPU-budget head, and a stronger whole-image jitter.
ARMS["preaug"] = ARMS["jitter"] + ARMS["translate"]
ARMS["jitter_strong"] = ("--jitter=0.2,0.2,0.2,0",)
# Per-image intensity standardisation at the model's input, without the jitter (the other way
# to be blind to a lamp's drift).
ARMS["standardize"] = ("--input_standardization",)
# What each arm departs from, for the tables: the choice it decides.
CHOICES = {"jitter": "whole-image colour jitter", "translate": "random translation",
           "authors_head": "projection head (8x512 + 128) and its initialisation",
           "glorot_classifier": "classifier initialisation", "paper": "all at once",
           "preaug": "whole-image jitter and translation (A.1)",
           "jitter_strong": "whole-image colour jitter of 0.2",
           "standardize": "per-image intensity standardisation"}

# Families of images: flags that select the data (``{data_root}`` is replaced), and the kind of
# validation defects the yardstick reads ("probable": ELPV's cells at defect probability 2/3;
# "all": every kind of a carved validation set).
FAMILIES: dict[str, dict] = {
    "elpv_poly": {"flags": ("--flagfile=configs/elpv.flags", "--data_dir={data_root}/elpv",
                            "--category=poly"), "category": "poly", "data": "elpv",
                  "yardstick": "probable", "kind": "real: solar cells, multicrystalline"},
    "elpv_mono": {"flags": ("--flagfile=configs/elpv.flags", "--data_dir={data_root}/elpv",
                            "--category=mono"), "category": "mono", "data": "elpv",
                  "yardstick": "probable", "kind": "real: solar cells, monocrystalline"},
    "mvtec_bottle": {"flags": ("--dataset=mvtec", "--data_dir={data_root}/mvtec_val",
                               "--category=bottle"), "category": "bottle", "data": "mvtec_val",
                     "yardstick": "all", "kind": "real: MVTec AD bottle (the paper's data)"},
    "testdata_washer": {"flags": ("--dataset=mvtec", "--data_dir={data_root}/testdata_val",
                                  "--category=washer"), "category": "washer",
                        "data": "testdata_val", "yardstick": "all",
                        "kind": "synthetic: the shipped testdata"},
}
STEPS = (600, 2400, 9600)


def cell_dir(study_dir: str, family: str, arm: str, steps: int, seed: int) -> str:
    """The model dir of one cell."""
    return os.path.join(study_dir, family, arm, f"steps_{steps}", f"seed_{seed}")


def carve_validation(category_dir: str, out_dir: str, fraction: float = 1 / 3,
                     seed: int = 0) -> dict[str, int]:
    """Copies an MVTec-layout category to ``out_dir`` with a seeded ``fraction`` of each defect
    kind's test images moved to ``validation/<kind>`` (their masks dropped): labelled defects
    that the test set no longer holds. Files are hard-linked where possible. Returns the number
    moved per kind. ValueError when the category has no defect folder."""
    test = os.path.join(category_dir, "test")
    kinds = sorted(k for k in os.listdir(test) if k != "good"
                   and os.path.isdir(os.path.join(test, k))) if os.path.isdir(test) else []
    if not kinds:
        raise ValueError(f"{category_dir}: no test/<defect> folder to carve a validation set from")
    rng = random.Random(seed)
    moved = {}
    for kind in kinds:
        images = sorted(os.path.basename(p) for p in index.list_images(os.path.join(test, kind)))
        chosen = set(rng.sample(images, max(1, round(fraction * len(images)))))
        moved[kind] = len(chosen)
        mask_dir = os.path.join(category_dir, "ground_truth", kind)
        for name in images:
            dest = "validation" if name in chosen else "test"
            _link(os.path.join(test, kind, name), os.path.join(out_dir, dest, kind, name))
            mask = index.find_mask(mask_dir, name) if dest == "test" else None
            if mask:
                _link(mask, os.path.join(out_dir, "ground_truth", kind, os.path.basename(mask)))
    for folder in ("train/good", "test/good"):
        src = os.path.join(category_dir, folder)
        for path in index.list_images(src) if os.path.isdir(src) else []:
            _link(path, os.path.join(out_dir, folder, os.path.basename(path)))
    return moved


def _link(src: str, dst: str) -> None:
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if os.path.exists(dst):
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def train_args(family: str, arm: str, steps: int, seed: int, study_dir: str, data_root: str,
               image_size: int = 64) -> list[str]:
    """``launch.train``'s arguments for one cell: the family's data, the CPU-budget config with
    its choices pinned (:data:`BASE_FLAGS`), the arm's departures, then the budget."""
    spec = FAMILIES[family]
    data = [f.format(data_root=data_root) for f in spec["flags"]]
    # A family's own flagfile (ELPV's) nests configs/3way.flags, so it goes first and the
    # CPU-budget file after it, as configs/elpv_3way_cpu.flags does.
    first = [f for f in data if f.startswith("--flagfile=")]
    rest = [f for f in data if not f.startswith("--flagfile=")]
    return [*first, "--flagfile=configs/3way_cpu.flags", *rest, *BASE_FLAGS, *ARMS[arm],
            f"--image_size={image_size}", "--epochs=1", f"--steps_per_epoch={steps}",
            "--val_fraction=0.2", f"--seed={seed}", "--log_every=25",
            f"--checkpoint_every={min(200, steps)}", "--export_dir=none",
            f"--model_dir={cell_dir(study_dir, family, arm, steps, seed)}"]


def validate_args(family: str, arm: str, steps: int, seed: int, study_dir: str,
                  data_root: str) -> list[str]:
    """``launch.validate``'s arguments for one cell."""
    return [f"--model_dir={cell_dir(study_dir, family, arm, steps, seed)}",
            f"--data_dir={os.path.join(data_root, FAMILIES[family]['data'])}"]


def read_cell(model_dir: str, family: str) -> Optional[dict]:
    """One finished cell's figures, or None when it has not finished (no validation.json):
    accuracy at the end and at a quarter of the steps, per class at the end, whether it learned,
    the yardstick (validation AUROC), and the test AUROC (read after any decision)."""
    category = FAMILIES[family]["category"]
    results, validation = (os.path.join(model_dir, name)
                           for name in ("results.json", "validation.json"))
    if not (os.path.exists(results) and os.path.exists(validation)):
        return None
    run = files.read_json(results)["categories"][category]
    aurocs = files.read_json(validation)["categories"][category]["auroc"]
    learning = run.get("learning", {})
    return {"final_accuracy": learning.get("final_accuracy"),
            "final_accuracy_per_class": learning.get("final_accuracy_per_class"),
            "quarter_accuracy": learning.get("quarter_accuracy"),
            "learned": learning.get("learned"),
            "yardstick": aurocs[FAMILIES[family]["yardstick"]],
            "validation_auroc": aurocs, "test_auroc": run["auroc"]}


def collect(study_dir: str) -> list[dict]:
    """Every finished cell under ``study_dir``: family, arm, steps, seed and :func:`read_cell`."""
    records = []
    for family in sorted(FAMILIES):
        for arm in ARMS:
            arm_dir = os.path.join(study_dir, family, arm)
            if not os.path.isdir(arm_dir):
                continue
            for budget in sorted(os.listdir(arm_dir)):
                match = re.fullmatch(r"steps_(\d+)", budget)
                if not match:
                    continue
                for seed_dir in sorted(os.listdir(os.path.join(arm_dir, budget))):
                    seed = re.fullmatch(r"seed_(\d+)", seed_dir)
                    path = os.path.join(arm_dir, budget, seed_dir)
                    cell = read_cell(path, family) if seed and os.path.isdir(path) else None
                    if cell:
                        records.append({"family": family, "arm": arm,
                                        "steps": int(match.group(1)),
                                        "seed": int(seed.group(1)), **cell})
    return records


def paired(records: Sequence[dict], arm: str, key: str = "yardstick",
           families: Optional[Sequence[str]] = None) -> dict[int, dict]:
    """Steps -> the differences ``arm`` minus the baseline in ``key``, paired by (family, seed),
    with their mean, standard error and the pairs themselves."""
    by_cell = {(r["family"], r["arm"], r["steps"], r["seed"]): r for r in records}
    out: dict[int, dict] = {}
    for (family, name, steps, seed), r in sorted(by_cell.items()):
        base = by_cell.get((family, BASELINE, steps, seed))
        if name != arm or base is None or (families and family not in families):
            continue
        if r[key] is None or base[key] is None:
            continue
        out.setdefault(steps, {"pairs": []})["pairs"].append(
            {"family": family, "seed": seed, "arm": r[key], "baseline": base[key],
             "difference": r[key] - base[key]})
    for entry in out.values():
        entry.update(metrics.seed_stat([p["difference"] for p in entry["pairs"]]))
    return out


def decide(records: Sequence[dict], arm: str, min_seeds: int = 3, min_families: int = 2,
           z: float = 2.0) -> dict:
    """The rule, written before the runs (docs/learning.md, point 15): at the longest budget where
    ``arm`` has at least ``min_seeds`` paired seeds on each of at least ``min_families`` real
    families, the paper's side (the arm) is kept unless its mean paired yardstick difference is
    below zero by more than ``z`` standard errors; a tie goes to the paper. Returns the budget,
    the statistic and the verdict ("paper", "departure" or "undecided": too few cells yet)."""
    real = [f for f, spec in FAMILIES.items() if spec["kind"].startswith("real")]
    by_steps = paired(records, arm, families=real)
    for steps in sorted(by_steps, reverse=True):
        seeds: dict[str, int] = {}
        for p in by_steps[steps]["pairs"]:
            seeds[p["family"]] = seeds.get(p["family"], 0) + 1
        if sum(n >= min_seeds for n in seeds.values()) >= min_families:
            s = by_steps[steps]
            hurts = s["mean"] < 0 and s["se"] is not None and -s["mean"] > z * s["se"]
            return {"steps": steps, "mean": s["mean"], "se": s["se"], "n": s["n"],
                    "verdict": "departure" if hurts else "paper"}
    return {"steps": None, "verdict": "undecided"}


def trend(records: Sequence[dict], arm: str, target_steps: int = 65536) -> Optional[dict]:
    """A least-squares line through the mean paired difference against log2(steps), over the
    budgets measured, extrapolated to ``target_steps``. Assumes the difference changes linearly
    in the logarithm of the budget; None with fewer than two budgets."""
    by_steps = paired(records, arm)
    if len(by_steps) < 2:
        return None
    x = np.log2(sorted(by_steps))
    y = np.array([by_steps[s]["mean"] for s in sorted(by_steps)])
    slope, intercept = np.polyfit(x, y, 1)
    signs = {int(np.sign(v)) for v in y if v}
    return {"slope_per_doubling": float(slope), "at_target": float(intercept + slope *
            np.log2(target_steps)), "target_steps": target_steps, "flips": len(signs) > 1}


def points(value: Optional[float], se: Optional[float] = None, signed: bool = False) -> str:
    """A fraction in points (with its sign when ``signed``: a difference), ± its standard error
    when it has one."""
    if value is None:
        return "–"
    text = f"{100 * value:+.1f}" if signed else f"{100 * value:.1f}"
    return text if se is None else f"{text} ± {100 * se:.1f}"


def table_markdown(records: Sequence[dict]) -> str:
    """Per departure and budget: for each family and for the real families together, the seeds,
    the mean yardstick of both sides, their paired difference (paper side minus the CPU-budget
    choice) ± its standard error, the training accuracy at the end, and the rule's verdict."""
    lines = []
    for arm in ARMS:
        if arm == BASELINE or not paired(records, arm):
            continue
        verdict, line = decide(records, arm), trend(records, arm)
        lines += [f"#### {CHOICES[arm]} (`{arm}` against `{BASELINE}`)", "",
                  "| steps | family | seeds | yardstick, CPU choice | yardstick, paper | "
                  "paired difference | accuracy at the end, CPU / paper | test AUROC, CPU / paper |",
                  "| ---: | --- | ---: | ---: | ---: | ---: | --- | --- |"]
        real = [f for f, s in FAMILIES.items() if s["kind"].startswith("real")]
        for steps, entry in sorted(paired(records, arm).items()):
            groups = {f: [p for p in entry["pairs"] if p["family"] == f] for f in FAMILIES}
            groups["real families"] = [p for p in entry["pairs"] if p["family"] in real]
            for family, pairs in groups.items():
                if not pairs:
                    continue
                seeds = {p["seed"] for p in pairs}
                fams = {p["family"] for p in pairs}
                cells = [r for r in records if r["steps"] == steps and r["family"] in fams
                         and r["seed"] in seeds]
                acc = {side: metrics.seed_stat([r["final_accuracy"] for r in cells
                                                if r["arm"] == side]) for side in (BASELINE, arm)}
                test = {side: metrics.seed_stat([r["test_auroc"] for r in cells
                                                 if r["arm"] == side]) for side in (BASELINE, arm)}
                diff = metrics.seed_stat([p["difference"] for p in pairs])
                lines.append(
                    f"| {steps} | {family} | {len(pairs)} | "
                    f"{points(float(np.mean([p['baseline'] for p in pairs])))} | "
                    f"{points(float(np.mean([p['arm'] for p in pairs])))} | "
                    f"{points(diff['mean'], diff['se'], signed=True)} | "
                    f"{acc[BASELINE]['mean']:.3f} / {acc[arm]['mean']:.3f} | "
                    f"{points(test[BASELINE]['mean'])} / {points(test[arm]['mean'])} |")
        lines.append("")
        if verdict["verdict"] == "undecided":
            lines.append("Rule: undecided (no budget yet has 3 seeds on 2 real families).")
        else:
            lines.append(f"Rule at {verdict['steps']} steps: {points(verdict['mean'], verdict['se'], True)}"
                         f" over {verdict['n']} pairs → **{verdict['verdict']}**.")
        if line:
            lines.append(f"Trend: {100 * line['slope_per_doubling']:+.2f} points per doubling of "
                         f"the budget, {points(line['at_target'])} at {line['target_steps']} steps "
                         f"if linear in log(steps); sign {'flips' if line['flips'] else 'holds'} "
                         "across the budgets measured.")
        lines.append("")
    return "\n".join(lines) if lines else "No paired cells have finished yet.\n"


def plot(records: Sequence[dict], path: str) -> str:
    """The figure: per departure, the paired yardstick difference (paper side minus the CPU
    choice, AUROC points, mean ± s.e. over seeds) against the budget, one line per family."""
    plt = plots.pyplot("The budget study's figure")
    arms = [a for a in ARMS if a != BASELINE and paired(records, a)]
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(4 * max(1, len(arms)), 3.4),
                             squeeze=False)
    for ax, arm in zip(axes[0], arms):
        for i, family in enumerate(FAMILIES):
            data = paired(records, arm, families=[family])
            if not data:
                continue
            steps = sorted(data)
            x = [s * (1 + 0.04 * (i - 1.5)) for s in steps]
            y = [100 * data[s]["mean"] for s in steps]
            e = [0 if data[s]["se"] is None else 100 * data[s]["se"] for s in steps]
            ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=family)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        budgets = sorted(paired(records, arm))
        ax.set_xticks(budgets, [f"{s:,}" for s in budgets])
        ax.set_xlim(budgets[0] / 1.6, budgets[-1] * 1.6)
        ax.set_title(CHOICES[arm], fontsize=9)
        ax.set_xlabel("training steps")
    axes[0][0].set_ylabel("validation AUROC: paper − CPU (points)")
    if arms:
        axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    files.write_bytes(path, plots.figure_png(fig, dpi=110, tight=False))
    return path
