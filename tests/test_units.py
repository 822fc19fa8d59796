import pytest

from console import units


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("5s", 5.0),
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        (3, 3.0),
        ("250us", 0.00025),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert units.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "size"),
    [("200MB", 200e6), ("10MiB", 10 * 1024**2), ("512KB", 512e3), (100, 100.0), ("1.5GB", 1.5e9)],
)
def test_sizes(text: object, size: float) -> None:
    assert units.parse_size(text) == pytest.approx(size)


def test_rates_and_percentages() -> None:
    assert units.parse_rate("100/s") == 100
    assert units.parse_rate("600/m") == pytest.approx(10)
    assert units.parse_percent("90%") == pytest.approx(0.9)
    assert units.parse_percent(0.25) == 0.25


@pytest.mark.parametrize("bad", ["5 parsecs", "s", "5", "-1s", True, "1h 2x"])
def test_bad_durations_say_what_was_expected(bad: object) -> None:
    if bad == "5":  # a bare number string is not a duration: units are required in strings
        with pytest.raises(units.UnitError, match="unit"):
            units.parse_duration(bad)
        return
    with pytest.raises(units.UnitError):
        units.parse_duration(bad)


@pytest.mark.parametrize(
    ("parse", "bad"),
    [
        (units.parse_size, "12 parsecs"),
        (units.parse_rate, "100"),
        (units.parse_percent, 90),
        (units.parse_percent, "ninety%"),
    ],
)
def test_bad_values(parse: object, bad: object) -> None:
    with pytest.raises(units.UnitError):
        parse(bad)  # type: ignore[operator]
