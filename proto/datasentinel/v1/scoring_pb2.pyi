from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RawVectors(_message.Message):
    __slots__ = ("data", "rows", "cols")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    rows: int
    cols: int
    def __init__(self, data: _Optional[bytes] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class FloatVectors(_message.Message):
    __slots__ = ("values", "cols")
    VALUES_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    cols: int
    def __init__(self, values: _Optional[_Iterable[float]] = ..., cols: _Optional[int] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("request_id", "ids", "raw", "floats", "include_feature_errors", "threshold", "top_features")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    FLOATS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FEATURE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TOP_FEATURES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ids: _containers.RepeatedScalarFieldContainer[int]
    raw: RawVectors
    floats: FloatVectors
    include_feature_errors: bool
    threshold: float
    top_features: int
    def __init__(self, request_id: _Optional[str] = ..., ids: _Optional[_Iterable[int]] = ..., raw: _Optional[_Union[RawVectors, _Mapping]] = ..., floats: _Optional[_Union[FloatVectors, _Mapping]] = ..., include_feature_errors: _Optional[bool] = ..., threshold: _Optional[float] = ..., top_features: _Optional[int] = ...) -> None: ...

class FeatureContribution(_message.Message):
    __slots__ = ("name", "share", "value", "expected")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    name: str
    share: float
    value: float
    expected: float
    def __init__(self, name: _Optional[str] = ..., share: _Optional[float] = ..., value: _Optional[float] = ..., expected: _Optional[float] = ...) -> None: ...

class RowExplanation(_message.Message):
    __slots__ = ("top_features", "missing_features")
    TOP_FEATURES_FIELD_NUMBER: _ClassVar[int]
    MISSING_FEATURES_FIELD_NUMBER: _ClassVar[int]
    top_features: _containers.RepeatedCompositeFieldContainer[FeatureContribution]
    missing_features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, top_features: _Optional[_Iterable[_Union[FeatureContribution, _Mapping]]] = ..., missing_features: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("request_id", "ids", "scores", "is_anomaly", "threshold", "model_version", "feature_errors", "severity", "explanations")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    IS_ANOMALY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEATURE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    EXPLANATIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ids: _containers.RepeatedScalarFieldContainer[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    is_anomaly: _containers.RepeatedScalarFieldContainer[bool]
    threshold: float
    model_version: str
    feature_errors: RawVectors
    severity: _containers.RepeatedScalarFieldContainer[float]
    explanations: _containers.RepeatedCompositeFieldContainer[RowExplanation]
    def __init__(self, request_id: _Optional[str] = ..., ids: _Optional[_Iterable[int]] = ..., scores: _Optional[_Iterable[float]] = ..., is_anomaly: _Optional[_Iterable[bool]] = ..., threshold: _Optional[float] = ..., model_version: _Optional[str] = ..., feature_errors: _Optional[_Union[RawVectors, _Mapping]] = ..., severity: _Optional[_Iterable[float]] = ..., explanations: _Optional[_Iterable[_Union[RowExplanation, _Mapping]]] = ...) -> None: ...

class ScoreError(_message.Message):
    __slots__ = ("code", "message", "ids")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ScoreStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    result: ScoreResponse
    error: ScoreError
    def __init__(self, request_id: _Optional[str] = ..., result: _Optional[_Union[ScoreResponse, _Mapping]] = ..., error: _Optional[_Union[ScoreError, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("feature_names", "input_dim", "threshold", "model_version", "model_sha256", "execution_provider", "max_batch_rows", "config_schema_version", "accepts_missing", "key_columns")
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    INPUT_DIM_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ROWS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACCEPTS_MISSING_FIELD_NUMBER: _ClassVar[int]
    KEY_COLUMNS_FIELD_NUMBER: _ClassVar[int]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    input_dim: int
    threshold: float
    model_version: str
    model_sha256: str
    execution_provider: str
    max_batch_rows: int
    config_schema_version: int
    accepts_missing: bool
    key_columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature_names: _Optional[_Iterable[str]] = ..., input_dim: _Optional[int] = ..., threshold: _Optional[float] = ..., model_version: _Optional[str] = ..., model_sha256: _Optional[str] = ..., execution_provider: _Optional[str] = ..., max_batch_rows: _Optional[int] = ..., config_schema_version: _Optional[int] = ..., accepts_missing: _Optional[bool] = ..., key_columns: _Optional[_Iterable[str]] = ...) -> None: ...
