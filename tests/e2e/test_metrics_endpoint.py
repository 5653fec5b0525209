"""/metrics of a real engine adds up to the traffic the test sent, with one worker process and
with several (their values are summed)."""

import urllib.request

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from datasentinel.v1 import scoring_pb2 as pb
from datasentinel.v1 import scoring_pb2_grpc as pb_grpc


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def request(x):
    rows, cols = x.shape
    return pb.ScoreRequest(
        ids=range(rows), raw=pb.RawVectors(data=x.tobytes(), rows=rows, cols=cols)
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_counters_histograms_and_labels_add_up(tiny_model, start_engine, workers):
    engine = start_engine(tiny_model.dir, "--workers", str(workers))
    # Health says SERVING once one worker is; a later one's warm-up batch (one row, counted in
    # datasentinel_batch_rows) could otherwise land after the scrape below.
    engine.wait_log("SERVING model", count=workers)
    rng = np.random.default_rng(4)
    flagged = rows = 0
    with engine.channel() as channel:
        stub = pb_grpc.AnomalyScorerStub(channel)
        for _ in range(5):
            x = rng.normal(scale=2, size=(7, tiny_model.dim)).astype(np.float32)
            flagged += sum(stub.Score(request(x)).is_anomaly)
            rows += 7
        with pytest.raises(grpc.RpcError):
            stub.Score(request(np.zeros((1, tiny_model.dim + 1), np.float32)))
        stream = [request(np.ones((2, tiny_model.dim), np.float32)) for _ in range(3)]
        flagged += sum(sum(r.result.is_anomaly) for r in stub.ScoreStream(iter(stream)))
        rows += 6
    samples = scrape(engine.metrics_port)
    assert value(samples, "datasentinel_requests_total", rpc="Score", code="OK") == 5
    assert value(samples, "datasentinel_requests_total", rpc="Score", code="INVALID_ARGUMENT") == 1
    assert value(samples, "datasentinel_requests_total", rpc="ScoreStream", code="OK") == 3
    assert value(samples, "datasentinel_request_latency_seconds_count", rpc="Score") == 6
    # Only the client's rows: the workers' warm-up probes are no traffic.
    assert value(samples, "datasentinel_rows_scored_total") == rows
    assert value(samples, "datasentinel_anomalies_total") == flagged
    assert value(samples, "datasentinel_score_threshold_ratio_count") == rows
    assert value(samples, "datasentinel_batch_rows_sum") == rows + workers
    assert value(samples, "datasentinel_queue_depth") == 0
    info = [k for k in samples if k[0] == "datasentinel_model_info" and samples[k] == 1]
    assert info and ("model_version", tiny_model.version) in info[0][1]
    assert ("execution_provider", "CPUExecutionProvider") in info[0][1]
