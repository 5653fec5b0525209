"""Errors the trainer expects and reports in one line (``main`` exits 2 on them, no traceback)."""


class TrainerError(Exception):
    """A problem the user can fix (bad data, bad settings) or a model that must not be shipped."""


class DataError(TrainerError, ValueError):
    """The input data cannot be trained on; the message names the file and the problem."""


class TrainingError(TrainerError, RuntimeError):
    """Training produced no usable model (for example the loss became NaN)."""


class ExportError(TrainerError, RuntimeError):
    """The exported ONNX graph is malformed or disagrees with the torch model it came from."""
