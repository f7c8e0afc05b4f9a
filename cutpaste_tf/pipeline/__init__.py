"""The run pipeline: one category from split to export, written once (runner.py) with what the
model types do differently in image.py and patch.py; the model-dir layout, config.json and
threshold.json (rundir.py); the classifier and its training batches (build.py); the inputs
checked before training (inputs.py); GradCAM and pixel metrics (localize.py); the run's summary
tables (summary.py); re-export of a finished run (reexport.py) and its model loaded back
(trained.py)."""
