"""What a run leaves in the models folder. ``onnx_export`` turns the trained scoring graph into
ONNX and checks it against torch before anything is written; ``artifacts`` builds the
``config.json`` that describes the model and writes it with ``model.onnx``, atomically."""
