"""The chapter runner ``python -m ntkbook``."""
import pytest

from ntkbook import __main__ as cli


def test_chapters_listed_and_resolved():
    names = cli.chapters()
    assert "01_tangent_kernel" in names
    assert cli.resolve_chapter("1").stem == "01_tangent_kernel"
    assert cli.resolve_chapter("01_tangent_kernel.ipynb").stem == "01_tangent_kernel"
    with pytest.raises(SystemExit, match="unknown chapter"):
        cli.resolve_chapter("99")


def test_parse_value():
    assert cli.parse_value("False") is False
    assert cli.parse_value("[64, 128]") == [64, 128]
    assert cli.parse_value("0.5") == 0.5
    assert cli.parse_value("relu") == "relu"
