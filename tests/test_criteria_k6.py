"""The threshold grammar agrees with k6's own parser tests (grafana/k6
``metrics/thresholds_parser_test.go``), and never raises anything but CriterionError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.criteria import (
    CriterionError,
    _aggregation,
    _go_float,
    _scan,
    parse_recovery_threshold,
    parse_threshold,
)
from console.metrics import MetricSpec, MetricType

SPECS = [
    MetricSpec("t", MetricType.TREND, "ms"),
    MetricSpec("c", MetricType.COUNTER, "count"),
    MetricSpec("g", MetricType.GAUGE, "bytes"),
    MetricSpec("r", MetricType.RATE, ""),
]
ANY_KIND = {  # the metric each aggregation applies to, so only the grammar is under test
    "count": SPECS[1],
    "rate": SPECS[3],
    "value": SPECS[2],
    "avg": SPECS[0],
    "min": SPECS[0],
    "max": SPECS[0],
    "med": SPECS[0],
}


def k6_parse(text: str) -> tuple[str, str, float]:
    method, _, _ = _scan(text)
    spec = ANY_KIND.get(method, SPECS[0])
    parsed = parse_threshold(text, spec)
    return parsed.aggregation, parsed.op, parsed.target


# TestParseThresholdExpression
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("count!20", None),
        ("foo>20", None),
        ("count>abc", None),
        ("count>20", ("count", ">", 20.0)),
    ],
)
def test_k6_parse_threshold_expression(text: str, want: tuple[str, str, float] | None) -> None:
    if want is None:
        with pytest.raises(CriterionError):
            k6_parse(text)
    else:
        assert k6_parse(text) == want


# TestParseThresholdAggregationMethod
@pytest.mark.parametrize(
    ("method", "want"),
    [
        ("count", "count"),
        ("rate", "rate"),
        ("value", "value"),
        ("avg", "avg"),
        ("min", "min"),
        ("max", "max"),
        ("med", "med"),
        ("p(99)", "p(99)"),
        ("p(99.9)", "p(99.9)"),
        ("p(0)", "p(0)"),
        ("p(100)", "p(100)"),
        ("foo", None),
        ("p()", None),
        ("p(99", None),
        ("p(foo)", None),
        ("p(-1)", None),
        ("p(101)", None),
        ("p(NaN)", None),
        ("p(+Inf)", None),
    ],
)
def test_k6_parse_aggregation_method(method: str, want: str | None) -> None:
    if want is None:
        with pytest.raises(CriterionError):
            k6_parse(f"{method}<1")
    else:
        assert k6_parse(f"{method}<1")[0] == want


# TestScanThresholdExpression
@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("foo<=bar", ("foo", "<=", "bar")),
        ("foo<bar", ("foo", "<", "bar")),
        ("foo>=bar", ("foo", ">=", "bar")),
        ("foo>bar", ("foo", ">", "bar")),
        ("foo===bar", ("foo", "===", "bar")),
        ("foo==bar", ("foo", "==", "bar")),
        ("foo!=bar", ("foo", "!=", "bar")),
        ("  foo  <=bar", ("foo", "<=", "bar")),
        ("foo<=  bar  ", ("foo", "<=", "bar")),
        ("foo!bar", None),
    ],
)
def test_k6_scan_threshold_expression(text: str, want: tuple[str, str, str] | None) -> None:
    if want is None:
        with pytest.raises(CriterionError):
            _scan(text)
    else:
        assert _scan(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("1e3", 1000.0),
        ("+0.5", 0.5),
        ("5.", 5.0),
        (".5", 0.5),
        ("-2", -2.0),
        ("Infinity", math.inf),
        ("+Inf", math.inf),
        ("0x1p-2", 0.25),
        ("1e400", None),  # ParseFloat: value out of range
        ("1_000", None),
        ("1.2.3", None),
        (".", None),
        ("", None),
    ],
)
def test_numbers_read_as_go_parses_floats(text: str, want: float | None) -> None:
    assert _go_float(text) == want


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("count===1", 1.0),
        ("p(0)<1", 1.0),
        ("p(95)<1e3", 1000.0),
        ("p(95)<+0.5", 0.5),
        ("p(95)<5.", 5.0),
        ("p(95)<Infinity", math.inf),
        ("p(95)<1e3ms", 1000.0),
        ("p(95)<1.5e-3s", 1.5),
    ],
)
def test_what_k6_accepts_stressdeck_accepts(text: str, target: float) -> None:
    assert parse_threshold(text, SPECS[0]).target == pytest.approx(target)


def test_triple_equals_compares_like_double() -> None:
    threshold = parse_threshold("count===1", SPECS[1])
    assert threshold.holds(1.0) and not threshold.holds(2.0)


@pytest.mark.parametrize("text", ["p(1.2.3)<1", "p(.)<1", "p(99<1", "p(95))<1", "avg<NaN"])
def test_malformed_expressions_are_clean_errors(text: str) -> None:
    with pytest.raises(CriterionError):
        parse_threshold(text, SPECS[0])


def test_percentile_aggregation_is_canonical() -> None:
    assert _aggregation("x", "p(1e1)") == "p(10)"
    assert parse_threshold("p(5.)<1", SPECS[0]).percentile == 5.0


ALPHABET = st.sampled_from(list("p()<>=!.+-eExX0123456789 µ%/smhdkKMBGiIn fNaIty\t\n\x00é"))
PIECES = st.sampled_from(
    [
        *("p(", ")", "<", "<=", ">", ">=", "==", "===", "!=", "count", "rate", "avg", "med"),
        *("value", "Infinity", "NaN", "inf", "1e3", "+0.5", "5.", ".", "0x1p-2", "ms", "s", "%"),
        *("/s", "MB"),
    ]
)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=ALPHABET),
        st.lists(st.one_of(PIECES, st.text(alphabet=ALPHABET, max_size=3))).map("".join),
    ),
    st.sampled_from(SPECS),
)
@pytest.mark.slow  # 1,500 generated expressions
def test_the_parser_raises_only_its_own_error(text: str, spec: MetricSpec) -> None:
    for parse in (lambda t: parse_threshold(t, spec), parse_recovery_threshold):
        try:
            parsed = parse(text)
        except CriterionError:
            continue
        assert not math.isnan(parsed.target)
        parsed.target_text()
