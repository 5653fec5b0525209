"""Our Open Inference Protocol .proto must match the wire facts of the reference clients: every
message field (name, number, type, cardinality) and every method we define is the same as in
tritonclient's copy of Triton's grpc_service.proto. The two define the same symbols, so each is
read in its own process. Our extensions are named below: each is a field Triton's copy lacks,
on a number it does not use, so its clients skip it (protobuf ignores unknown fields)."""

import json
import subprocess
import sys

DUMP = """
import importlib, json, sys, warnings
warnings.simplefilter("ignore")
d = importlib.import_module(sys.argv[1]).DESCRIPTOR
def walk(m, prefix, out):
    for f in m.fields:
        out[prefix + m.name + "." + f.name] = [
            f.number, f.type, f.is_repeated, f.message_type.full_name if f.message_type else ""
        ]
    for n in m.nested_types:
        walk(n, prefix + m.name + ".", out)
fields = {}
for m in d.message_types_by_name.values():
    walk(m, "", fields)
service = d.services_by_name["GRPCInferenceService"]
methods = {
    m.name: [m.input_type.full_name, m.output_type.full_name]
    + [m.client_streaming, m.server_streaming]
    for m in service.methods
}
print(json.dumps({"package": d.package, "fields": fields, "methods": methods}))
"""


# ModelMetadataResponse.parameters (feature names): KServe's open inference protocol and MLServer
# define it as field 6; Triton's copy has no field 6 there.
EXTENSIONS = {
    "ModelMetadataResponse.parameters",
    "ModelMetadataResponse.ParametersEntry.key",
    "ModelMetadataResponse.ParametersEntry.value",
}


def describe(module):
    result = subprocess.run(
        [sys.executable, "-c", DUMP, module], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_every_field_and_method_matches_tritonclient():
    ours = describe("datasentinel.oip.grpc_predict_v2_pb2")
    theirs = describe("tritonclient.grpc.service_pb2")
    assert ours["package"] == theirs["package"] == "inference"
    differ = {
        k: (v, theirs["fields"].get(k))
        for k, v in ours["fields"].items()
        if theirs["fields"].get(k) != v
    }
    assert set(differ) == EXTENSIONS, differ
    for name in EXTENSIONS:
        message, number = name.rsplit(".", 1)[0], ours["fields"][name][0]
        used = [v[0] for k, v in theirs["fields"].items() if k.rsplit(".", 1)[0] == message]
        assert name not in theirs["fields"] and number not in used, name
    assert {k: theirs["methods"].get(k) for k in ours["methods"]} == ours["methods"]
    assert len(ours["fields"]) > 60 and "ModelStreamInfer" in ours["methods"]
