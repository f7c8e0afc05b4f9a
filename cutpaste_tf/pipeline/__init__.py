"""The run pipeline: one category from split to export, written once (runner.py) with what the
model types do differently in image.py and patch.py; the classifier and its training batches
(build.py); the inputs checked before training (inputs.py); GradCAM and pixel metrics
(localize.py); re-export of a finished run (reexport.py) and its model loaded back (trained.py).
The model dir's layout is :mod:`cutpaste_tf.rundir`; the run's summary tables are
:mod:`cutpaste_tf.reporting.summary`."""
