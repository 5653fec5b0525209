"""Talks to an engine with the official tritonclient only (no DataSentinel code), as a user of
another inference server would; prints what it got as JSON. Run by test_open_inference_protocol.

    python triton_client_probe.py PORT VECTORS.npy
    python triton_client_probe.py PORT VECTORS.npy explain   # a model with severity, expected

With ``explain``: one request with the parameters threshold 2.5 and top_features 2 and every
per-row output, as a user of issue 16's answers would send it; nothing else.
"""

import json
import queue
import sys

import numpy as np
import tritonclient.grpc as triton

port, vectors_path = sys.argv[1], sys.argv[2]
x = np.load(vectors_path)
client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
if sys.argv[3:] == ["explain"]:
    features = triton.InferInput("features", list(x.shape), "FP32")
    features.set_data_from_numpy(x)
    names = ("score", "is_anomaly", "severity", "top_features", "top_feature_shares", "missing")
    result = client.infer(
        "datasentinel",
        [features],
        outputs=[triton.InferRequestedOutput(n) for n in (*names, "expected")],
        parameters={"threshold": 2.5, "top_features": 2},
    )
    out = {name: result.as_numpy(name).tolist() for name in names}
    out["top_features"] = [[b.decode() for b in row] for row in result.as_numpy("top_features")]
    out["expected_shape"] = list(result.as_numpy("expected").shape)
    response = result.get_response(as_json=True)
    out["parameters"] = {k: next(iter(v.values())) for k, v in response["parameters"].items()}
    out["model_version"] = response["model_version"]
    metadata = client.get_model_metadata("datasentinel", as_json=True)
    out["outputs"] = [o["name"] for o in metadata["outputs"]]
    print(json.dumps(out))
    sys.exit(0)
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("datasentinel"),
    "unknown_model_ready": client.is_model_ready("no-such-model"),
}
metadata = client.get_model_metadata("datasentinel", as_json=True)
out["inputs"] = metadata["inputs"]
out["outputs"] = [o["name"] for o in metadata["outputs"]]
before = client.get_inference_statistics("datasentinel", as_json=True)["model_stats"][0]
out["inference_count_before"] = int(before.get("inference_count", 0))
config = client.get_model_config("datasentinel", as_json=True)["config"]
out["config"] = {
    "max_batch_size": config["max_batch_size"],
    "platform": config["platform"],
    "input": config["input"],
    "outputs": {o["name"]: o.get("dims") for o in config["output"]},
    "feature_names": config["parameters"]["feature_names"]["string_value"],
}
out["index"] = client.get_model_repository_index(as_json=True)["models"]

features = triton.InferInput("features", list(x.shape), "FP32")
features.set_data_from_numpy(x)
wanted = [triton.InferRequestedOutput(n) for n in ("score", "is_anomaly", "feature_errors")]
result = client.infer("datasentinel", [features], outputs=wanted, request_id="r1")
out["score"] = result.as_numpy("score").tolist()
out["is_anomaly"] = result.as_numpy("is_anomaly").tolist()
out["feature_errors_shape"] = list(result.as_numpy("feature_errors").shape)
response = result.get_response(as_json=True)
out["id"] = response["id"]
out["parameters"] = {k: next(iter(v.values())) for k, v in response["parameters"].items()}

default = client.infer("datasentinel", [features])
after = client.get_inference_statistics("datasentinel", as_json=True)["model_stats"][0]
out["inference_count_after"] = int(after["inference_count"])
out["success_count"] = int(after["inference_stats"]["success"]["count"])
out["default_outputs"] = sorted(o["name"] for o in default.get_response(as_json=True)["outputs"])

# Triton's streaming API: a bad request gets its own error and the stream goes on.
answers: queue.Queue = queue.Queue()
client.start_stream(callback=lambda result, error: answers.put((result, error)))
narrow = triton.InferInput("features", [1, x.shape[1] - 1], "FP32")
narrow.set_data_from_numpy(x[:1, :-1].copy())
for request_id, inputs in (("s1", [features]), ("s2", [narrow]), ("s3", [features])):
    client.async_stream_infer("datasentinel", inputs, request_id=request_id)
stream = []
for _ in range(3):
    result, error = answers.get(timeout=30)
    if error is not None:
        stream.append({"error": str(error)})
    else:
        stream.append({"id": result.get_response().id, "n": len(result.as_numpy("score"))})
client.stop_stream()
out["stream"] = stream
print(json.dumps(out))
