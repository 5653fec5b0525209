"""Talks to the engine's REST port with the official tritonclient.http only (no DataSentinel
code), over TLS with a token header, as a user of Triton's HTTP API would; prints JSON.
Run by test_rest.

    python triton_http_probe.py PORT CA.pem TOKEN VECTORS.npy
"""

import json
import sys

import numpy as np
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

port, ca, token, vectors_path = sys.argv[1:5]
x = np.load(vectors_path)
client = triton.InferenceServerClient(
    url=f"127.0.0.1:{port}", ssl=True, ssl_options={"ca_certs": ca}, network_timeout=30
)
headers = {"authorization": f"Bearer {token}"}
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("datasentinel"),
    "unknown_model_ready": client.is_model_ready("no-such-model"),
}
metadata = client.get_model_metadata("datasentinel", headers=headers)
out["feature_names"] = metadata["parameters"]["feature_names"]
out["outputs"] = [o["name"] for o in metadata["outputs"]]
config = client.get_model_config("datasentinel", headers=headers)
out["max_batch_size"] = config["max_batch_size"]
out["index"] = client.get_model_repository_index(headers=headers)
stats = client.get_inference_statistics("datasentinel", headers=headers)
out["inference_count"] = stats["model_stats"][0].get("inference_count", 0)
for binary in (True, False):
    features = triton.InferInput("features", list(x.shape), "FP32")
    features.set_data_from_numpy(x, binary_data=binary)
    wanted = [
        triton.InferRequestedOutput(name, binary_data=binary)
        for name in ("score", "is_anomaly", "feature_errors")
    ]
    result = client.infer(
        "datasentinel", [features], outputs=wanted, request_id="r1", headers=dict(headers)
    )
    key = "binary" if binary else "json"
    out[key] = {
        "score": result.as_numpy("score").tolist(),
        "is_anomaly": result.as_numpy("is_anomaly").tolist(),
        "feature_errors_shape": list(result.as_numpy("feature_errors").shape),
        "id": result.get_response()["id"],
    }
try:
    client.infer("datasentinel", [features])
    out["no_header"] = "accepted"
except InferenceServerException as exc:
    out["no_header"] = f"{exc.status()} {exc.message()}"
print(json.dumps(out))
