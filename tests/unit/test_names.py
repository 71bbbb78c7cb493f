import pytest

from mlharbor.core.names import parse_name
from mlharbor.errors import InvalidArgument


def test_parse_and_normalise() -> None:
    n = parse_name("Dev.Raw.Trips")
    assert str(n) == "dev.raw.trips"
    assert n.parts == ("dev", "raw", "trips")


@pytest.mark.parametrize("bad", ["trips", "a.b", "a.b.c.d", "a..b", "dev.raw.../x", "dev.raw.a/b", "dev.raw.%2e%2e",
                                 "dev.raw.1abc", "dev.raw.a b", "dev.raw." + "x" * 65, "", "dev.raw.a\x00"])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_name(bad)


def test_error_names_the_whole_name() -> None:
    with pytest.raises(InvalidArgument, match=r"'a\.\.b'"):
        parse_name("a..b")
