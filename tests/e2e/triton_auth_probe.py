"""Talks to a TLS + token engine with the official tritonclient only, as a user of another
inference server would: TLS from root_certificates, the token as a header. Prints JSON.
Run by test_security.

    python triton_auth_probe.py PORT CA.pem TOKEN
"""

import json
import sys

import numpy as np
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

port, ca, token = sys.argv[1], sys.argv[2], sys.argv[3]
client = triton.InferenceServerClient(url=f"127.0.0.1:{port}", ssl=True, root_certificates=ca)
headers = {"authorization": f"Bearer {token}"}
features = triton.InferInput("features", [2, 8], "FP32")
features.set_data_from_numpy(np.zeros((2, 8), dtype=np.float32))
out = {"ready": client.is_model_ready("datasentinel", headers=headers)}
# The probes need no token, as the gRPC health service does not.
out["open_probes"] = [
    client.is_server_live(),
    client.is_server_ready(),
    client.is_model_ready("datasentinel"),
    client.is_server_live(headers={"authorization": "Bearer nope"}),
]
config = client.get_model_config("datasentinel", headers=headers, as_json=True)["config"]
out["config_max_batch_size"] = config["max_batch_size"]
result = client.infer("datasentinel", [features], headers=headers)
out["n_scores"] = len(result.as_numpy("score"))
wrong = {"authorization": "Bearer nope"}
for name, call in (
    ("no_header", lambda: client.infer("datasentinel", [features])),
    ("wrong_token", lambda: client.get_model_metadata("datasentinel", headers=wrong)),
    ("config_no_header", lambda: client.get_model_config("datasentinel")),
    ("statistics_no_header", lambda: client.get_inference_statistics("datasentinel")),
    ("index_no_header", lambda: client.get_model_repository_index()),
):
    try:
        call()
        out[name] = "accepted"
    except InferenceServerException as exc:
        out[name] = f"{exc.status()} {exc.message()}"
print(json.dumps(out))
