"""Issue 16: per-row answers a person can act on (severity, missing features, top features with
their share, value and expected value) and sensitivity at run time (a request's own threshold,
the engine's --threshold), on a schema-3 model and unchanged on older ones."""

from __future__ import annotations

import asyncio
import json
import math

import numpy as np
import pytest

from datasentinel.engine.errors import InvalidInput, ModelLoadError, ModelNotFound
from datasentinel.engine.model.reload import ModelReloader
from datasentinel.engine.model.session import RuntimeOptions, load_model
from datasentinel.engine.protocol import oip_converters
from datasentinel.engine.protocol import v1_converters as converters
from datasentinel.engine.scoring.core import Limits, ScoreBatch, ScoringCore, top_features
from datasentinel.engine.settings import EngineSettings
from datasentinel.model_config import CONFIG_FILENAME
from datasentinel.v1 import scoring_pb2 as pb
from tests.conftest import build_tiny_model
from tests.engine.conftest import wait_outcomes

CPU = RuntimeOptions(providers=("CPUExecutionProvider",))
DIM = 5


@pytest.fixture
def v3_model(tmp_path):
    return build_tiny_model(tmp_path / "v3", dim=DIM, threshold=0.5, version="v3", v3_extras=True)


@pytest.fixture
def old_model(tmp_path):
    return build_tiny_model(tmp_path / "old", dim=DIM, threshold=0.5, version="old")


async def started(models_dir, threshold=None) -> ScoringCore:
    core = ScoringCore(load_model(models_dir, CPU, threshold), Limits(max_batch_rows=512))
    await core.start()
    return core


@pytest.fixture
async def v3(v3_model):
    core = await started(v3_model.dir)
    yield core
    await core.close()


@pytest.fixture
async def old(old_model):
    core = await started(old_model.dir)
    yield core
    await core.close()


def rows(model, n=64, scale=2.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (model.mean + scale * model.std * rng.normal(size=(n, model.dim))).astype(np.float32)


def request(x, **fields) -> pb.ScoreRequest:
    raw = pb.RawVectors(data=x.tobytes(), rows=len(x), cols=x.shape[1])
    return pb.ScoreRequest(ids=range(len(x)), raw=raw, **fields)


async def answer(core, message: pb.ScoreRequest) -> pb.ScoreResponse:
    """Our API in process: the converters and the core, as the servicer runs them."""
    result = await core.score(converters.batch_from_request(message))
    return converters.response_from_result(result, message)


# --- The model's expected output ------------------------------------------------------------


def test_the_expected_output_is_fetched_when_the_config_names_it(v3_model, old_model):
    x = rows(v3_model, 7)
    out = load_model(v3_model.dir, CPU).run(x)
    np.testing.assert_allclose(out.expected, v3_model.reconstruction(x), rtol=1e-5, atol=1e-5)
    assert load_model(old_model.dir, CPU).run(rows(old_model, 7)).expected is None


def test_a_config_naming_an_expected_output_the_graph_lacks_is_refused(old_model):
    path = old_model.dir / CONFIG_FILENAME
    config = json.loads(path.read_text())
    config["expected_output"] = "expected"
    path.write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"lacks outputs \['expected'\]"):
        load_model(old_model.dir, CPU)


# --- Missing values ---------------------------------------------------------------------------


async def test_nan_is_filled_in_and_its_features_named_for_a_model_that_fills_it(v3, v3_model):
    x = rows(v3_model, 4)
    x[1, 2] = np.nan
    x[3, [0, 4]] = np.nan
    response = await answer(v3, request(x))
    np.testing.assert_allclose(response.scores, v3_model.expected(x)[0], rtol=1e-5)
    assert [list(e.missing_features) for e in response.explanations] == [
        [],
        ["f2"],
        [],
        ["f0", "f4"],
    ]
    assert all(len(e.top_features) == 0 for e in response.explanations)


async def test_without_missing_values_there_are_no_explanations(v3, v3_model):
    response = await answer(v3, request(rows(v3_model, 4)))
    assert len(response.explanations) == 0


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
async def test_inf_is_still_refused_by_a_model_that_fills_nan(v3, v3_model, bad):
    x = rows(v3_model, 3)
    x[0, 1] = np.nan
    x[2, 3] = bad
    with pytest.raises(InvalidInput, match=r"vector 2 \(id 2\).*feature 'f3'.*Inf cannot be"):
        await v3.score(ScoreBatch(range(3), x))


async def test_nan_is_refused_by_an_older_model_saying_to_retrain(old, old_model):
    x = rows(old_model, 3)
    x[1, 0] = np.nan
    with pytest.raises(InvalidInput) as caught:
        await old.score(ScoreBatch(range(3), x))
    message = str(caught.value)
    assert "vector 1 (id 1)" in message and "feature 'f0'" in message
    assert "trained without missing-value support" in message and "retrain" in message


# --- A request's own threshold ----------------------------------------------------------------


async def test_a_requests_threshold_sets_its_flags_and_is_reported(v3, v3_model):
    x = rows(v3_model)
    default = await answer(v3, request(x))
    scores = np.array(default.scores)
    assert default.threshold == pytest.approx(0.5)
    own = await answer(v3, request(x, threshold=2.0))
    assert own.threshold == 2.0
    assert list(own.is_anomaly) == (scores > 2.0).tolist()
    assert sum(own.is_anomaly) < sum(default.is_anomaly)
    zero = await answer(v3, request(x, threshold=0.0))
    assert zero.threshold == 0.0 and all(zero.is_anomaly)


async def test_merged_batches_keep_their_own_thresholds(v3, v3_model):
    x = rows(v3_model, 30)
    scores = (await v3.score(ScoreBatch(range(30), x))).scores
    thresholds = [None, 0.1, 3.0, None, 1.0]
    parts = [
        ScoreBatch(range(6), x[6 * i : 6 * i + 6], threshold=t) for i, t in enumerate(thresholds)
    ]
    results = await v3.score_each(parts)
    for i, (result, threshold) in enumerate(zip(results, thresholds, strict=True)):
        used = 0.5 if threshold is None else threshold
        assert result.threshold == used
        assert result.is_anomaly.tolist() == (scores[6 * i : 6 * i + 6] > used).tolist()


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(threshold=-0.5), "threshold -0.5 is not a finite number >= 0"),
        (dict(threshold=math.nan), "threshold nan is not a finite number >= 0"),
        (dict(threshold=math.inf), "threshold inf is not a finite number >= 0"),
        (dict(top_features=DIM + 1), f"top_features {DIM + 1} is not between 0 and the model's"),
    ],
    ids=["negative", "nan", "inf", "too-many-top-features"],
)
async def test_a_bad_threshold_or_top_features_is_refused_with_what_to_send(
    v3, v3_model, fields, message
):
    with pytest.raises(InvalidInput, match=message):
        await answer(v3, request(rows(v3_model, 2), **fields))


# --- The engine's threshold and the served version ---------------------------------------------


async def test_the_engines_threshold_replaces_the_configs_and_tags_the_version(v3_model):
    core = await started(v3_model.dir, threshold=2.0)
    try:
        x = rows(v3_model)
        response = await answer(core, request(x))
        assert response.threshold == 2.0
        assert response.model_version == "v3+threshold=2"
        assert list(response.is_anomaly) == (np.array(response.scores) > 2.0).tolist()
        # A request's own threshold still wins, under the same served version.
        own = await answer(core, request(x, threshold=0.25))
        assert own.threshold == 0.25 and own.model_version == "v3+threshold=2"
        info = converters.model_info(core.model, core.limits)
        assert (info.threshold, info.model_version) == (2.0, "v3+threshold=2")
        metadata = oip_converters.model_metadata(core.model, "datasentinel")
        assert list(metadata.versions) == ["v3+threshold=2"]
        oip_converters.check_model("datasentinel", "v3+threshold=2", core.model, "datasentinel")
        with pytest.raises(ModelNotFound, match="serving version 'v3\\+threshold=2'"):
            oip_converters.check_model("datasentinel", "v3", core.model, "datasentinel")
    finally:
        await core.close()


async def test_the_engines_threshold_equal_to_the_trainers_keeps_the_version(v3_model):
    core = await started(v3_model.dir, threshold=0.5)
    try:
        assert core.model.model_version == "v3"
    finally:
        await core.close()


def test_the_threshold_setting_reads_the_flag_and_the_environment(monkeypatch):
    assert EngineSettings(_cli_parse_args=[]).threshold is None
    assert EngineSettings(_cli_parse_args=["--threshold", "2.5"]).threshold == 2.5
    monkeypatch.setenv("ENGINE_THRESHOLD", "0.75")
    assert EngineSettings(_cli_parse_args=[]).threshold == 0.75
    for bad in ("-1", "nan", "inf"):
        with pytest.raises(ValueError, match="threshold"):
            EngineSettings(_cli_parse_args=["--threshold", bad])


async def test_an_older_model_keeps_its_version_and_threshold(old, old_model):
    response = await answer(old, request(rows(old_model)))
    assert response.model_version == "old" and response.threshold == pytest.approx(0.5)
    info = converters.model_info(old.model, old.limits)
    assert (info.model_version, info.accepts_missing, list(info.key_columns)) == ("old", False, [])


def test_model_info_says_a_schema_3_model_accepts_missing_values(v3_model):
    info = converters.model_info(load_model(v3_model.dir, CPU), Limits())
    assert info.accepts_missing and list(info.key_columns) == ["id"]
    assert info.config_schema_version == 3


async def test_editing_the_configs_threshold_and_reloading_gives_a_new_version(v3, v3_model):
    outcomes: list[bool] = []
    watcher = asyncio.create_task(
        ModelReloader(v3, v3_model.dir, CPU, 0.02, on_outcome=outcomes.append).run()
    )
    try:
        await asyncio.sleep(0.1)
        path = v3_model.dir / CONFIG_FILENAME
        config = json.loads(path.read_text())
        config["threshold"] = 1.25  # the model file is the same: only the config changed
        path.write_text(json.dumps(config))
        await wait_outcomes(outcomes, 1)
        assert outcomes == [True]
    finally:
        watcher.cancel()
    x = rows(v3_model)
    response = await answer(v3, request(x))
    assert response.model_version == "v3+threshold=1.25"
    assert response.threshold == 1.25
    assert list(response.is_anomaly) == (np.array(response.scores) > 1.25).tolist()
    assert converters.model_info(v3.model, v3.limits).model_version == "v3+threshold=1.25"


async def test_a_reload_keeps_the_engines_threshold(v3_model):
    core = await started(v3_model.dir, threshold=2.0)
    try:
        build_tiny_model(v3_model.dir, dim=DIM, version="v3-next", seed=3, v3_extras=True)
        reloader = ModelReloader(core, v3_model.dir, CPU, 0.0, threshold=2.0)
        assert await reloader.reload()
        assert core.model.model_version == "v3-next+threshold=2"
        assert (await core.score(ScoreBatch([0], rows(v3_model, 1)))).threshold == 2.0
    finally:
        await core.close()


# --- Severity ---------------------------------------------------------------------------------


async def test_severity_is_monotone_in_the_score_and_in_0_1(v3, v3_model):
    x = rows(v3_model, 256, scale=3.0)
    x[0] = 1e30  # scores +Inf (overflow): the most severe
    response = await answer(v3, request(x))
    scores, severity = np.array(response.scores), np.array(response.severity)
    assert len(severity) == len(x)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(severity[order]) >= 0)
    assert severity.min() >= 0 and severity.max() <= 1
    assert severity[0] == 1.0 and scores[0] == np.inf
    assert severity[1:].max() > 0.9 and severity.min() < 0.5  # the table's range is used


async def test_an_older_model_answers_no_severity(old, old_model):
    response = await answer(old, request(rows(old_model)))
    assert len(response.severity) == 0
    assert (await old.score(ScoreBatch(range(3), rows(old_model, 3)))).severity is None


async def test_batches_scored_together_each_name_only_their_own_missing_cells(v3, v3_model):
    """Stream messages waiting together share one model call and one look for NaN: each answer
    still says which of its own cells were missing, and a batch without any says none."""
    parts = [rows(v3_model, n) for n in (2, 3, 1, 2)]
    parts[1][2, 3] = np.nan
    parts[3][0, 0] = np.nan
    batches, first = [], 0
    for part in parts:
        batches.append(ScoreBatch(list(range(first, first + len(part))), part))
        first += len(part)
    results = await v3.score_each(batches)
    assert [r.missing is None for r in results] == [True, False, True, False]
    np.testing.assert_array_equal(results[1].missing, np.isnan(parts[1]))
    np.testing.assert_array_equal(results[3].missing, np.isnan(parts[3]))


# --- Top features -----------------------------------------------------------------------------


async def test_top_features_are_the_largest_terms_most_first_with_value_and_expected(v3, v3_model):
    x = rows(v3_model, 40, scale=3.0)
    x[5, 1] = np.nan
    response = await answer(v3, request(x, top_features=3, include_feature_errors=True))
    _, errors = v3_model.expected(x)
    expected = v3_model.reconstruction(x)
    assert len(response.explanations) == 40
    for row, explanation in enumerate(response.explanations):
        top = explanation.top_features
        indices = [int(c.name[1:]) for c in top]
        assert indices == np.argsort(-errors[row])[:3].tolist()
        shares = np.array([c.share for c in top])
        np.testing.assert_allclose(shares, errors[row, indices] / errors[row].sum(), rtol=1e-4)
        assert np.all(np.diff(shares) <= 0) and shares.sum() <= 1 + 1e-6
        np.testing.assert_array_equal([c.value for c in top], x[row, indices])
        np.testing.assert_allclose([c.expected for c in top], expected[row, indices], atol=1e-5)
    assert list(response.explanations[5].missing_features) == ["f1"]


def test_top_features_shares_handle_zero_and_infinite_rows():
    errors = np.array(
        [[0.0, 0.0, 0.0], [1.0, 3.0, 0.0], [np.inf, 1.0, np.inf], [2.0, 2.0, 4.0]], np.float32
    )
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    top = top_features(errors, vectors, np.full_like(vectors, np.nan), 2)
    np.testing.assert_array_equal(top.share[0], [0, 0])
    assert top.index[1].tolist() == [1, 0]
    np.testing.assert_allclose(top.share[1], [0.75, 0.25])
    assert sorted(top.index[2].tolist()) == [0, 2]
    np.testing.assert_allclose(top.share[2], [0.5, 0.5])
    assert top.index[3, 0] == 2 and top.share[3, 0] == 0.5
    np.testing.assert_array_equal(top.value, np.take_along_axis(vectors, top.index, 1))
    assert np.isnan(top.expected).all()
    every = top_features(errors[1:2], vectors[1:2], vectors[1:2], 3)
    assert every.index.tolist() == [[1, 0, 2]]


async def test_top_features_of_an_older_model_have_no_expected_values(old, old_model):
    response = await answer(old, request(rows(old_model, 3), top_features=2))
    assert [len(e.top_features) for e in response.explanations] == [2, 2, 2]
    assert all(math.isnan(c.expected) for e in response.explanations for c in e.top_features)


async def test_top_features_per_batch_in_one_merged_call(v3, v3_model):
    x = rows(v3_model, 8)
    parts = [ScoreBatch(range(4), x[:4], top_features=2), ScoreBatch(range(4), x[4:])]
    first, second = await v3.score_each(parts)
    assert first.top_features.index.shape == (4, 2) and second.top_features is None
