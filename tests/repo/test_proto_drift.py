"""The committed generated gRPC code must be exactly what the .proto generates."""

import importlib.util

from tests.conftest import REPO


def load_codegen():
    """proto/codegen.py is a developer tool outside the installed package: loaded by path."""
    spec = importlib.util.spec_from_file_location("codegen", REPO / "proto" / "codegen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


codegen = load_codegen()


def test_generated_code_matches_the_proto(tmp_path):
    codegen.generate(tmp_path)
    fresh = codegen.generated_files(tmp_path)
    committed = codegen.generated_files(codegen.PROTO_ROOT)
    assert set(fresh) == set(committed)
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"generated code is stale, run `python proto/codegen.py`: {stale}"


def test_every_generated_file_is_present():
    assert all(codegen.generated_files(codegen.PROTO_ROOT).values())


def test_the_developer_tool_is_not_installed():
    assert importlib.util.find_spec("datasentinel.codegen") is None
