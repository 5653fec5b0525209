"""--port-file: the port, written whole, or a start-up error a person can act on."""

import pytest

from datasentinel.engine.errors import EngineError
from datasentinel.engine.port_file import write_port_file


def test_writes_the_port_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "engine.port"
    write_port_file(path, 41234)
    write_port_file(path, 41234)  # a second worker sharing the port writes the same
    assert path.read_text() == "41234\n"
    assert [p.name for p in tmp_path.iterdir()] == ["engine.port"]


def test_an_unwritable_place_is_an_engine_error_naming_the_file(tmp_path):
    path = tmp_path / "missing-folder" / "engine.port"
    with pytest.raises(EngineError, match="cannot write the port file .*engine.port"):
        write_port_file(path, 41234)


def test_no_file_asked_for_writes_nothing(tmp_path):
    write_port_file(None, 41234)
    assert list(tmp_path.iterdir()) == []
