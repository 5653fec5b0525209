"""What a row's score is: the maths inside ``model.onnx``. ``graph`` holds the autoencoder groups,
``ScoringGraph`` (the score's one description is its docstring), calibration and ``combine`` (the
score is 1 + the mean surprise of the two most surprised of three calibrated components);
``scaling`` the per-feature scalings the two autoencoder groups apply; ``tail`` the per-feature
tail table, the third component; ``fused`` and ``lean`` the same graph rewritten in the layouts
that are exported and served (lean where it fits, fused otherwise:
``export.onnx_export.export_model``). To answer "how is the score computed?", start at
``graph.ScoringGraph``."""
