"""The tiny test model rebuilt as a two-layer (encoder/decoder) linear autoencoder: the same
maths as ``build_tiny_model``'s projection, but, like a trained autoencoder, huge finite inputs
overflow inside the layers to +Inf and -Inf, and their sum scores NaN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from datasentinel.model_config import MODEL_FILENAME, save_config, write_atomic
from tests.conftest import TinyModel, build_tiny_model, tiny_config


def build_layered_model(directory: Path, dim: int = 4) -> TinyModel:
    tiny = build_tiny_model(directory, dim=dim)
    model = onnx.load(str(directory / MODEL_FILENAME))
    values, vectors = np.linalg.eigh(tiny.projection.astype(np.float64))
    encoder = vectors[:, values > 0.5].astype(np.float32)  # P = E E^T (a projection)
    # Scaled layers, as training leaves them: the decoder undoes the encoder's gain.
    graph = model.graph
    kept = [i for i in graph.initializer if i.name != "projection"]
    del graph.initializer[:]
    graph.initializer.extend(
        kept
        + [
            numpy_helper.from_array(encoder * 1e20, "encoder"),
            numpy_helper.from_array(encoder.T * 1e-20, "decoder"),
        ]
    )
    nodes = []
    for node in graph.node:
        if node.op_type == "MatMul":
            nodes.append(helper.make_node("MatMul", ["z", "encoder"], ["code"]))
            nodes.append(helper.make_node("MatMul", ["code", "decoder"], ["recon"]))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    write_atomic(directory / MODEL_FILENAME, model.SerializeToString())
    save_config(
        tiny_config(directory, tiny.mean, tiny.std, tiny.threshold, tiny.version), directory
    )
    return tiny
