"""The settings references in the services' READMEs are generated from the settings classes and
must be current, and every setting's help names the variable that really sets it."""

import importlib.util
import re

import pytest

from tests.conftest import REPO


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "settings_reference", REPO / "proto" / "settings_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def test_every_readme_reference_is_current():
    assert tool.stale_readmes(write=False) == [], "run: python proto/settings_reference.py"


@pytest.mark.parametrize("path", tool.SERVICES.values())
def test_every_setting_is_in_its_readme_with_its_variable(path):
    settings = tool.load(path)
    readme = next(r for r, p in tool.SERVICES.items() if p == path)
    text = (REPO / tool.readme_path(readme)).read_text()
    begin, end = tool.markers(readme)
    text = text[text.index(begin) : text.index(end)]  # this class's table, not another's
    for name, info in settings.model_fields.items():
        flag = f"`--{name.replace('_', '-')}`"
        row = next(line for line in text.splitlines() if line.startswith(f"| {flag} "))
        for variable in tool.env_names(settings, name, info):
            assert f"`{variable}`" in row


@pytest.mark.parametrize("path", tool.SERVICES.values())
def test_the_help_names_a_variable_that_sets_the_setting(path):
    settings = tool.load(path)
    for name, info in settings.model_fields.items():
        said = re.findall(r"Env: ([A-Z][A-Z0-9_]*)", info.description or "")
        assert said, f"{name}: the help names no variable"
        assert set(said) <= set(tool.env_names(settings, name, info)), name
