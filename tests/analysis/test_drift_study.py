"""The drift study's rule and tables (docs/learning.md, point 16), on made-up cells: no training."""

from cutpaste_tf.analysis import drift_study as ds


def _cell(family, seed, arm, density, drift, validation=0.8):
    return {"family": family, "seed": seed, "arm": arm, "density": density, "drift_auroc": drift,
            "validation_auroc": validation, "final_accuracy": 0.8, "false_alarm_10": 0.05,
            "test_auroc": 0.9, "drift_test_auroc": 0.9}


def _study(gain, validation_change, seeds=3, families=("elpv_poly", "mvtec_bottle")):
    """The paper's side and the augmented density over ``seeds`` seeds per family; the
    alternative's drift AUROC higher by ``gain`` (with a little noise per seed), its validation
    AUROC moved by ``validation_change``."""
    records = []
    for family in families:
        for seed in range(seeds):
            noise = 0.01 * ((seed + len(family)) % 3 - 1)
            records.append(_cell(family, seed, ds.PAPER_ARM, "run", 0.7))
            records.append(_cell(family, seed, ds.PAPER_ARM, "augmented", 0.7 + gain + noise,
                                 0.8 + validation_change + noise / 10))
    return records


def test_the_rule_needs_three_seeds_on_two_families():
    assert ds.decide(_study(0.1, 0.0, seeds=2), ds.PAPER_ARM, "augmented")["verdict"] == \
        "undecided"
    assert ds.decide(_study(0.1, 0.0, families=("elpv_poly",)), ds.PAPER_ARM,
                     "augmented")["verdict"] == "undecided"


def test_a_clear_drift_gain_with_the_plain_auroc_kept_is_a_departure():
    verdict = ds.decide(_study(0.05, 0.0), ds.PAPER_ARM, "augmented")
    assert verdict["verdict"] == "departure" and verdict["drift"]["n"] == 6
    assert abs(verdict["drift"]["mean"] - 0.05) < 0.01


def test_a_steady_validation_loss_keeps_the_paper_however_small():
    # The clause has no margin (point 16 says so): a steady 0.1-point loss is enough.
    assert ds.decide(_study(0.05, -0.001), ds.PAPER_ARM, "augmented")["verdict"] == "paper"
    # No drift gain: the paper's side stays.
    assert ds.decide(_study(0.0, 0.0), ds.PAPER_ARM, "augmented")["verdict"] == "paper"


def test_the_table_shows_a_single_cell_without_a_standard_error():
    records = _study(0.05, 0.0, seeds=1, families=("mvtec_bottle",))
    table = ds.table_markdown(records)
    assert "| mvtec_bottle | jitter | run | 1 | 0.800 | 80.0 | 70.0 | 5.0 | 90.0 | 90.0 |" in table
    assert "| jitter, augmented density | 1 | +4.0 | -0.1 | undecided |" in table
    full = ds.table_markdown(_study(0.05, 0.0))
    assert "| both | jitter | augmented | 6 |" in full and " ± " in full
    assert "| jitter, augmented density | 6 | +5.0 ± " in full and full.rstrip().endswith(
        "| departure |")
