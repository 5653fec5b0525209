"""Fitting the detector to the data. ``training`` is the loop (Adam on trimmed reconstruction
error, early stopping on the validation loss); ``threshold`` decides where the anomaly threshold
comes from (the validation scores, or out-of-fold scores when the validation split is small);
``progress`` reports a run's progress in the log and as a bar on a terminal."""
