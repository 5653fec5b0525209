"""The committed generated gRPC code must be exactly what the .proto generates."""

from datasentinel import codegen


def test_generated_code_matches_the_proto(tmp_path):
    codegen.generate(tmp_path)
    fresh = codegen.generated_files(tmp_path)
    committed = codegen.generated_files(codegen.PROTO_ROOT)
    assert set(fresh) == set(committed)
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"generated code is stale, run `python -m datasentinel.codegen`: {stale}"


def test_every_generated_file_is_present():
    assert all(codegen.generated_files(codegen.PROTO_ROOT).values())
