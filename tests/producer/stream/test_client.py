import numpy as np

from datasentinel.producer.channel.channel import open_channel
from datasentinel.producer.inputs.sources import synthetic_source
from datasentinel.producer.stream.client import ScoreStreamClient
from datasentinel.producer.stream.ledger import Ledger, RowState


def test_ctrl_c_cancels_the_stream_and_fails_what_is_left(engine):
    source = synthetic_source(200, seed=1)

    def batches_then_ctrl_c():
        batches = source.batches(50)
        yield next(batches)
        raise KeyboardInterrupt

    ledger = Ledger(source.n_rows)
    with open_channel(f"127.0.0.1:{engine.port}") as channel:
        client = ScoreStreamClient(channel, ledger, max_in_flight=4)
        client.run(batches_then_ctrl_c())
    assert client.interrupted
    assert (ledger.state[50:] == RowState.FAILED).all()
    assert ledger.state[0] in (RowState.OK, RowState.FAILED)  # the first may have been answered
    assert all("cancelled (Ctrl-C)" in reason for reason in ledger.reasons)
    assert np.count_nonzero(ledger.state == RowState.PENDING) == 0
