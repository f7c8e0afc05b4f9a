"""Table 3 (EfficientNet-B4 transfer): the run stage (the transcribed numbers:
tests/reporting/test_paper.py; the results table: tests/reporting/test_tables.py)."""

from cutpaste_tf.config import RunConfig, TrainConfig
from cutpaste_tf.evaluation import transfer


def test_stage_name_follows_the_training_steps():
    assert transfer.stage_name(RunConfig(train=TrainConfig(epochs=0))) == "pretrain"
    assert transfer.stage_name(RunConfig(train=TrainConfig(epochs=0, head_epochs=1))) == "finetune"

