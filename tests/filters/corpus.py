"""A conformance corpus built from the Amazon EventBridge documentation.

Sources: "Amazon EventBridge event patterns", "Content filtering in event
patterns", "Comparison operators for use in event patterns", "Arrays in event
patterns", and the event-ruler README (array consistency, numbers).

``MATCH_CASES`` are ``(id, pattern, event, expected)``; ``INVALID_CASES`` are
``(id, pattern, expected JSON path of the rejection)``.
"""

from __future__ import annotations

import copy
from typing import Any

EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated",
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.123",
        "ipv6": "2001:db8::1",
        "FileName": "image.PNG",
        "FilePath": "/usr/lib/python3/x.py",
        "location": "New York",
        "service": "EventBridge",
        "nullable": None,
        "empty-obj": {},
        "empty-arr": [],
        "flag": True,
        "zero": 0,
        "one": 1,
        "five-float": 5.0,
        "numbers": [1, 5, 10],
        "tags": ["red", "green"],
        "items": [{"name": "a", "qty": 1}, {"name": "b", "qty": 2}],
        "big": 12345678901234567891,
        "neg": -2.5,
        "star": "a*b",
        "backslash": "a\\b",
        "empty": "",
        "nested": {"deep": {"deeper": "bottom"}},
        "matrix": [[1, 2], [3, [4]]],
    },
}


def _with(**detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(EC2_EVENT)
    event["detail"].update(detail)
    return event


def _d(field: str, *alternatives: Any) -> dict[str, Any]:
    return {"detail": {field: list(alternatives)}}


MATCH_CASES: list[tuple[str, Any, Any, bool]] = []


def case(name: str, pattern: Any, event: Any, expected: bool) -> None:
    MATCH_CASES.append((f"{len(MATCH_CASES):03d}-{name}", pattern, event, expected))


def cases(name: str, pattern: Any, *pairs: tuple[Any, bool]) -> None:
    for event, expected in pairs:
        case(name, pattern, event, expected)


E = EC2_EVENT

# ---------------------------------------------------------------- exact values
case("source", {"source": ["aws.ec2"]}, E, True)
case("source-other", {"source": ["aws.s3"]}, E, False)
case("source-or", {"source": ["aws.s3", "aws.ec2"]}, E, True)
case(
    "two-fields",
    {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    E,
    True,
)
case("two-fields-one-fails", {"source": ["aws.ec2"], "detail-type": ["Other"]}, E, False)
case("nested", _d("state", "terminated"), E, True)
case("nested-fails", _d("state", "running"), E, False)
case("nested-or", _d("state", "running", "terminated"), E, True)
case("deep", {"detail": {"nested": {"deep": {"deeper": ["bottom"]}}}}, E, True)
case("deep-fails", {"detail": {"nested": {"deep": {"deeper": ["top"]}}}}, E, False)
case("missing-field", {"detail": {"nope": ["x"]}}, E, False)
case("missing-object", {"nope": {"x": ["y"]}}, E, False)
case("case-sensitive", {"source": ["AWS.EC2"]}, E, False)
case("number-int", _d("c-count", 5), E, True)
case("number-int-as-float", _d("c-count", 5.0), E, True)
case("number-float-as-int", _d("five-float", 5), E, True)
case("number-other", _d("c-count", 6), E, False)
case("number-not-string", _d("c-count", "5"), E, False)
case("string-not-number", {"version": [0]}, E, False)
case("float", _d("x-limit", 301.8), E, True)
case("negative", _d("neg", -2.5), E, True)
case("zero", _d("zero", 0), E, True)
case("zero-not-false", _d("zero", False), E, False)
case("true", _d("flag", True), E, True)
case("true-not-1", _d("one", True), E, False)
case("1-not-true", _d("flag", 1), E, False)
case("false-not-0", _d("flag", False), E, False)
case("null", _d("nullable", None), E, True)
case("null-not-missing", _d("missing", None), E, False)
case("null-not-empty-string", _d("empty", None), E, False)
case("empty-string", _d("empty", ""), E, True)
case("empty-string-not-null", _d("nullable", ""), E, False)
case("null-vs-string", _d("state", None), E, False)
case("object-not-leaf", _d("nested", "x"), E, False)
case("empty-obj-no-value", _d("empty-obj", None), E, False)
case("big-int-text-equal", _d("big", 12345678901234567891), E, True)
case("big-int-text-differs", _d("big", 12345678901234567890), E, False)
case("big-float-not-text", _d("big", 1.2345678901234567e19), E, False)
case("beyond-double", {"n": [10**400]}, {"n": 10**400}, True)
case("beyond-double-differs", {"n": [10**400]}, {"n": 10**400 + 1}, False)
# event-ruler 2.x compares numbers as doubles, and only those a double holds as
# written (ComparableNumber: BigDecimal.valueOf(double) equals the number); other
# numbers match exact values by their text, and no numeric range.
case("beyond-double-numeric", {"n": [{"numeric": [">", 1e308]}]}, {"n": 10**400}, False)
case("beyond-double-numeric-float", {"n": [{"numeric": [">", 1e308]}]}, {"n": 1.5e308}, True)
case("exact-double-not-comparable", {"n": [2**60]}, {"n": float(2**60)}, False)
case("exact-double-text", {"n": [2**60]}, {"n": 2**60}, True)
case("exact-1e23-comparable", {"n": [10**23]}, {"n": 1e23}, True)
case("exact-1e23-int", {"n": [1e23]}, {"n": 10**23}, True)
case("exact-1e23-neighbour", {"n": [1e23]}, {"n": 99999999999999991611392}, False)
case("exact-2-53", {"n": [2**53]}, {"n": float(2**53)}, True)
case("exact-2-53-plus-1", {"n": [2**53 + 1]}, {"n": float(2**53)}, False)
case("numeric-1e23-as-double", {"n": [{"numeric": ["<=", 1e23]}]}, {"n": 10**23}, True)
case("mixed-alternatives", _d("c-count", "x", None, True, 5), E, True)
case("empty-pattern-matches-all", {}, E, True)
case("empty-pattern-empty-event", {}, {}, True)

# ----------------------------------------------------------------------- arrays
case(
    "event-array",
    {"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]},
    E,
    True,
)
case("event-array-none", {"resources": ["arn:other"]}, E, False)
case("event-array-intersect", _d("tags", "blue", "green"), E, True)
case("event-array-no-intersect", _d("tags", "blue", "yellow"), E, False)
case("event-array-numbers", _d("numbers", 10), E, True)
case("event-array-numbers-miss", _d("numbers", 7), E, False)
case("nested-arrays-flatten", _d("matrix", 4), E, True)
case("nested-arrays-flatten-miss", _d("matrix", 5), E, False)
case("array-of-objects", {"detail": {"items": {"name": ["b"]}}}, E, True)
case("array-of-objects-miss", {"detail": {"items": {"name": ["c"]}}}, E, False)
case("same-element", {"detail": {"items": {"name": ["a"], "qty": [1]}}}, E, True)
case("same-element-2", {"detail": {"items": {"name": ["b"], "qty": [2]}}}, E, True)
case("different-elements", {"detail": {"items": {"name": ["a"], "qty": [2]}}}, E, False)
case(
    "different-elements-numeric",
    {"detail": {"items": {"name": ["a"], "qty": [{"numeric": [">", 1]}]}}},
    E,
    False,
)
case(
    "same-element-numeric",
    {"detail": {"items": {"name": ["b"], "qty": [{"numeric": [">", 1]}]}}},
    E,
    True,
)
case(
    "outside-array-independent",
    {"source": ["aws.ec2"], "detail": {"items": {"name": ["a"]}}},
    E,
    True,
)
cases(
    "nested-array-consistency",
    {"a": {"b": {"c": ["x"], "d": ["y"]}}},
    ({"a": [{"b": [{"c": "x", "d": "y"}]}]}, True),
    ({"a": [{"b": [{"c": "x"}, {"d": "y"}]}]}, False),
    ({"a": [{"b": {"c": "x"}}, {"b": {"d": "y"}}]}, False),
    ({"a": {"b": [{"c": "x", "d": "z"}, {"c": "q", "d": "y"}]}}, False),
    ({"a": [[{"b": {"c": "x", "d": "y"}}]]}, True),
)
cases(
    "consistency-across-levels",
    {"a": {"k": ["1"], "b": {"c": ["x"]}}},
    ({"a": [{"k": "1", "b": {"c": "x"}}, {"k": "2", "b": {"c": "y"}}]}, True),
    ({"a": [{"k": "1", "b": {"c": "y"}}, {"k": "2", "b": {"c": "x"}}]}, False),
    ({"a": {"k": "1", "b": [{"c": "y"}, {"c": "x"}]}}, True),
)
cases(
    "scalar-array-element",
    {"a": {"b": ["x"]}},
    ({"a": [1, {"b": "x"}]}, True),
    ({"a": [1, 2]}, False),
    ({"a": []}, False),
    ({"a": "b"}, False),
)
case("array-leaf-in-array", {"a": {"b": ["x"]}}, {"a": [{"b": ["y", "x"]}]}, True)

# ----------------------------------------------------------------------- prefix
case("prefix", {"time": [{"prefix": "2017-12-22"}]}, E, True)
case("prefix-miss", {"time": [{"prefix": "2017-10-02"}]}, E, False)
case("prefix-whole", {"source": [{"prefix": "aws.ec2"}]}, E, True)
case("prefix-longer", {"source": [{"prefix": "aws.ec2x"}]}, E, False)
case("prefix-case", {"source": [{"prefix": "AWS."}]}, E, False)
case("prefix-empty", {"source": [{"prefix": ""}]}, E, True)
case("prefix-not-number", _d("c-count", {"prefix": "5"}), E, False)
case("prefix-not-null", _d("nullable", {"prefix": ""}), E, False)
case("prefix-array", _d("tags", {"prefix": "gr"}), E, True)
case("prefix-ic", {"detail": {"service": [{"prefix": {"equals-ignore-case": "EVENTB"}}]}}, E, True)
case(
    "prefix-ic-lower",
    {"detail": {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]}},
    E,
    True,
)
case(
    "prefix-ic-miss",
    {"detail": {"service": [{"prefix": {"equals-ignore-case": "bridge"}}]}},
    E,
    False,
)
case("prefix-or-exact", {"source": [{"prefix": "aws.s"}, "aws.ec2"]}, E, True)
case("prefix-unicode", {"s": [{"prefix": "é"}]}, {"s": "été"}, True)

# ----------------------------------------------------------------------- suffix
case("suffix", {"detail": {"FileName": [{"suffix": ".PNG"}]}}, E, True)
case("suffix-case", {"detail": {"FileName": [{"suffix": ".png"}]}}, E, False)
case("suffix-ic", {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}}, E, True)
case(
    "suffix-ic-miss",
    {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".jpg"}}]}},
    E,
    False,
)
case("suffix-whole", {"source": [{"suffix": "aws.ec2"}]}, E, True)
case("suffix-longer", {"source": [{"suffix": "xaws.ec2"}]}, E, False)
case("suffix-empty", {"source": [{"suffix": ""}]}, E, True)
case("suffix-not-number", _d("c-count", {"suffix": "5"}), E, False)
case(
    "suffix-ic-service",
    {"detail": {"service": [{"suffix": {"equals-ignore-case": "TBRIDGE"}}]}},
    E,
    True,
)

# ---------------------------------------------------------- equals-ignore-case
case("eic", {"detail": {"location": [{"equals-ignore-case": "new york"}]}}, E, True)
case("eic-upper", {"detail": {"location": [{"equals-ignore-case": "NEW YORK"}]}}, E, True)
case("eic-miss", {"detail": {"location": [{"equals-ignore-case": "new yorks"}]}}, E, False)
case("eic-not-number", _d("c-count", {"equals-ignore-case": "5"}), E, False)
case("eic-empty", _d("empty", {"equals-ignore-case": ""}), E, True)
case("eic-array", _d("tags", {"equals-ignore-case": "RED"}), E, True)

# --------------------------------------------------------------------- wildcard
case("wildcard-middle", {"detail": {"FilePath": [{"wildcard": "/usr/*/x.py"}]}}, E, True)
case("wildcard-two", {"detail": {"FilePath": [{"wildcard": "*/lib/*"}]}}, E, True)
case("wildcard-miss", {"detail": {"FilePath": [{"wildcard": "*/bin/*"}]}}, E, False)
case("wildcard-star-only", {"source": [{"wildcard": "*"}]}, E, True)
case("wildcard-star-empty", _d("empty", {"wildcard": "*"}), E, True)
case("wildcard-zero-chars", {"source": [{"wildcard": "aws.*ec2"}]}, E, True)
case("wildcard-head", {"source": [{"wildcard": "aws.*"}]}, E, True)
case("wildcard-tail", {"source": [{"wildcard": "*.ec2"}]}, E, True)
case("wildcard-tail-miss", {"source": [{"wildcard": "*.ec"}]}, E, False)
case("wildcard-no-star", {"source": [{"wildcard": "aws.ec2"}]}, E, True)
case("wildcard-no-star-miss", {"source": [{"wildcard": "aws.ec"}]}, E, False)
case("wildcard-escaped-star", _d("star", {"wildcard": "a\\*b"}), E, True)
case("wildcard-escaped-star-literal", _d("star", {"wildcard": "a\\*c"}), E, False)
case("wildcard-escaped-not-glob", {"d": [{"wildcard": "a\\*b"}]}, {"d": "axxb"}, False)
case("wildcard-escaped-backslash", _d("backslash", {"wildcard": "a\\\\*"}), E, True)
case("wildcard-case", {"source": [{"wildcard": "AWS.*"}]}, E, False)
case("wildcard-not-number", _d("c-count", {"wildcard": "*"}), E, False)
case("wildcard-not-null", _d("nullable", {"wildcard": "*"}), E, False)
case("wildcard-overlap", {"s": [{"wildcard": "ab*ba"}]}, {"s": "aba"}, False)
case("wildcard-overlap-ok", {"s": [{"wildcard": "ab*ba"}]}, {"s": "abba"}, True)
case("wildcard-greedy", {"s": [{"wildcard": "*a*a*"}]}, {"s": "banana"}, True)
case("wildcard-order", {"s": [{"wildcard": "*n*b*"}]}, {"s": "banana"}, False)
case("wildcard-array", _d("tags", {"wildcard": "g*n"}), E, True)

# ------------------------------------------------------------------ anything-but
case("ab-string", _d("state", {"anything-but": "initializing"}), E, True)
case("ab-string-equal", _d("state", {"anything-but": "terminated"}), E, False)
case("ab-number", _d("x-limit", {"anything-but": 123}), E, True)
case("ab-number-equal", _d("c-count", {"anything-but": 5}), E, False)
case("ab-number-float-equal", _d("c-count", {"anything-but": 5.0}), E, False)
case("ab-list-strings", _d("state", {"anything-but": ["stopped", "overloaded"]}), E, True)
case("ab-list-strings-hit", _d("state", {"anything-but": ["stopped", "terminated"]}), E, False)
case("ab-list-numbers", _d("x-limit", {"anything-but": [100, 200, 300]}), E, True)
case("ab-list-numbers-hit", _d("d-count", {"anything-but": [1, 3]}), E, False)
case("ab-missing", _d("absent", {"anything-but": "x"}), E, False)
case("ab-null", _d("nullable", {"anything-but": "x"}), E, True)
case("ab-object", _d("nested", {"anything-but": "x"}), E, False)
case("ab-empty-array", _d("empty-arr", {"anything-but": "x"}), E, False)
case("ab-empty-object", _d("empty-obj", {"anything-but": "x"}), E, False)
case("ab-string-vs-number", _d("c-count", {"anything-but": "5"}), E, True)
case("ab-number-vs-string", {"version": [{"anything-but": 0}]}, E, True)
case("ab-bool", _d("flag", {"anything-but": "true"}), E, True)
case("ab-array-some-other", _d("tags", {"anything-but": "red"}), E, True)
case("ab-array-all-excluded", _d("tags", {"anything-but": ["red", "green"]}), E, False)
case("ab-prefix", {"region": [{"anything-but": {"prefix": "us-"}}]}, E, False)
case("ab-prefix-ok", {"region": [{"anything-but": {"prefix": "eu-"}}]}, E, True)
case("ab-prefix-number", _d("c-count", {"anything-but": {"prefix": "5"}}), E, True)
case("ab-prefix-null", _d("nullable", {"anything-but": {"prefix": "x"}}), E, True)
case("ab-suffix", {"detail": {"FileName": [{"anything-but": {"suffix": ".PNG"}}]}}, E, False)
case("ab-suffix-ok", {"detail": {"FileName": [{"anything-but": {"suffix": ".png"}}]}}, E, True)
case("ab-eic", _d("state", {"anything-but": {"equals-ignore-case": "TERMINATED"}}), E, False)
case("ab-eic-ok", _d("state", {"anything-but": {"equals-ignore-case": "RUNNING"}}), E, True)
case(
    "ab-eic-list",
    _d("state", {"anything-but": {"equals-ignore-case": ["X", "Terminated"]}}),
    E,
    False,
)
case("ab-wildcard", {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]}}, E, False)
case(
    "ab-wildcard-ok", {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/bin/*"}}]}}, E, True
)
case("ab-prefix-list", {"region": [{"anything-but": {"prefix": ["eu-", "us-"]}}]}, E, False)
case("ab-prefix-list-ok", {"region": [{"anything-but": {"prefix": ["eu-", "ap-"]}}]}, E, True)
case(
    "ab-suffix-list",
    {"detail": {"FileName": [{"anything-but": {"suffix": [".jpg", ".PNG"]}}]}},
    E,
    False,
)
case(
    "ab-suffix-list-ok",
    {"detail": {"FileName": [{"anything-but": {"suffix": [".jpg", ".gif"]}}]}},
    E,
    True,
)
case(
    "ab-wildcard-list",
    {"detail": {"FilePath": [{"anything-but": {"wildcard": ["*/bin/*", "/usr/*"]}}]}},
    E,
    False,
)
case("ab-or-exact", _d("state", {"anything-but": "terminated"}, "terminated"), E, True)
case(
    "ab-missing-with-exists-false", _d("absent", {"anything-but": "x"}, {"exists": False}), E, True
)

# ----------------------------------------------------------------------- numeric
case("num-gt", _d("c-count", {"numeric": [">", 0]}), E, True)
case("num-gt-equal", _d("c-count", {"numeric": [">", 5]}), E, False)
case("num-ge-equal", _d("c-count", {"numeric": [">=", 5]}), E, True)
case("num-lt", _d("c-count", {"numeric": ["<", 6]}), E, True)
case("num-lt-equal", _d("c-count", {"numeric": ["<", 5]}), E, False)
case("num-le-equal", _d("c-count", {"numeric": ["<=", 5]}), E, True)
case("num-eq", _d("c-count", {"numeric": ["=", 5]}), E, True)
case("num-eq-float", _d("c-count", {"numeric": ["=", 5.0]}), E, True)
case("num-eq-miss", _d("c-count", {"numeric": ["=", 5.000001]}), E, False)
case("num-range", _d("c-count", {"numeric": [">", 0, "<=", 5]}), E, True)
case("num-range-out", _d("c-count", {"numeric": [">", 5, "<=", 10]}), E, False)
case("num-range-open-top", _d("c-count", {"numeric": [">=", 0, "<", 5]}), E, False)
case(
    "num-doc-example",
    {
        "detail": {
            "c-count": [{"numeric": [">", 0, "<=", 5]}],
            "d-count": [{"numeric": ["<", 10]}],
            "x-limit": [{"numeric": ["=", 3.018e2]}],
        }
    },
    E,
    True,
)
case("num-float", _d("x-limit", {"numeric": [">", 301.7999999999, "<", 301.8000000001]}), E, True)
case("num-precision", {"n": [{"numeric": [">", 0.1]}]}, {"n": 0.10000000000000002}, True)
case("num-precision-eq", {"n": [{"numeric": ["=", 0.1]}]}, {"n": 0.10000000000000002}, False)
case("num-negative", _d("neg", {"numeric": ["<", 0]}), E, True)
case("num-large", {"n": [{"numeric": [">", 1e300]}]}, {"n": 1.5e300}, True)
case("num-tiny", {"n": [{"numeric": [">", 0]}]}, {"n": 5e-324}, True)
case("num-not-string", {"version": [{"numeric": ["=", 0]}]}, E, False)
case("num-not-bool", _d("flag", {"numeric": ["=", 1]}), E, False)
case("num-not-null", _d("nullable", {"numeric": [">", -1e308]}), E, False)
case("num-missing", _d("absent", {"numeric": [">", 0]}), E, False)
case("num-array", _d("numbers", {"numeric": [">", 9]}), E, True)
case("num-array-miss", _d("numbers", {"numeric": [">", 10]}), E, False)
case("num-array-range-per-element", _d("numbers", {"numeric": [">", 1, "<", 5]}), E, False)
case("num-two-ranges", _d("c-count", {"numeric": ["<", 1]}, {"numeric": [">", 4]}), E, True)
case("num-big-int-not-comparable", _d("big", {"numeric": [">", 1e19]}), E, False)
case("num-big-int-comparable", {"n": [{"numeric": [">", 1e19]}]}, {"n": 2 * 10**19}, True)
case(
    "num-big-int-exact",
    {"n": [{"numeric": [">", 9007199254740992]}]},
    {"n": 9007199254740993},
    False,
)
case(
    "num-2-53-comparable",
    {"n": [{"numeric": [">", 9007199254740991]}]},
    {"n": 9007199254740992},
    True,
)
case("ab-number-big-int-event", {"n": [{"anything-but": 5}]}, {"n": 2**60}, True)
case("ab-number-text-equal", {"n": [{"anything-but": 10**23}]}, {"n": 1e23}, False)

# ------------------------------------------------------------------------ exists
case("exists-true", _d("state", {"exists": True}), E, True)
case("exists-true-missing", _d("absent", {"exists": True}), E, False)
case("exists-false-missing", _d("absent", {"exists": False}), E, True)
case("exists-false-present", _d("state", {"exists": False}), E, False)
case("exists-null-present", _d("nullable", {"exists": True}), E, True)
case("exists-false-null", _d("nullable", {"exists": False}), E, False)
case("exists-empty-string", _d("empty", {"exists": True}), E, True)
case("exists-object-absent", _d("nested", {"exists": True}), E, False)
case("exists-false-object", _d("nested", {"exists": False}), E, True)
case("exists-empty-object", _d("empty-obj", {"exists": True}), E, False)
case("exists-false-empty-object", _d("empty-obj", {"exists": False}), E, True)
case("exists-empty-array", _d("empty-arr", {"exists": True}), E, False)
case("exists-false-empty-array", _d("empty-arr", {"exists": False}), E, True)
case("exists-array", _d("tags", {"exists": True}), E, True)
case("exists-array-of-objects", _d("items", {"exists": True}), E, False)
case("exists-false-no-parent", {"nope": {"x": [{"exists": False}]}}, E, True)
case("exists-false-parent-scalar", {"source": {"x": [{"exists": False}]}}, E, True)
case("exists-deep", {"detail": {"nested": {"deep": {"deeper": [{"exists": True}]}}}}, E, True)
case(
    "exists-false-with-others",
    {"source": ["aws.ec2"], "detail": {"absent": [{"exists": False}]}},
    E,
    True,
)
case(
    "exists-false-in-array-global",
    {"a": {"b": [{"exists": False}], "c": ["x"]}},
    {"a": [{"b": 1}, {"c": "x"}]},
    False,
)
case(
    "exists-false-in-array-none",
    {"a": {"b": [{"exists": False}], "c": ["x"]}},
    {"a": [{"d": 1}, {"c": "x"}]},
    True,
)
case("exists-false-only-on-empty", {"a": [{"exists": False}]}, {}, True)
case("exists-true-zero", _d("zero", {"exists": True}), E, True)
case("exists-true-false", _d("flag", {"exists": True}), E, True)
case("exists-or-value", _d("absent", {"exists": False}, "x"), _with(absent="x"), True)

# -------------------------------------------------------------------------- cidr
case("cidr", _d("source-ip", {"cidr": "10.0.0.0/24"}), E, True)
case("cidr-miss", _d("source-ip", {"cidr": "10.0.1.0/24"}), E, False)
case("cidr-31", _d("source-ip", {"cidr": "10.0.0.122/31"}), E, True)
case("ip-exact", _d("source-ip", "10.0.0.123"), E, True)
case("ip-exact-other", _d("source-ip", "10.0.0.124"), E, False)
case("ip-exact-ipv6-spelling", {"ip": ["2001:db8::1"]}, {"ip": "2001:DB8:0:0::1"}, True)
case("ip-exactly-spelling", {"ip": [{"exactly": "2001:db8::1"}]}, {"ip": "2001:DB8:0:0::1"}, False)
case("exactly", {"source": [{"exactly": "aws.ec2"}]}, E, True)
case("exactly-miss", {"source": [{"exactly": "aws.ec"}]}, E, False)
case("exactly-not-number", _d("c-count", {"exactly": "5"}), E, False)
case("cidr-8", _d("source-ip", {"cidr": "10.0.0.0/8"}), E, True)
case("cidr-0", _d("source-ip", {"cidr": "0.0.0.0/0"}), E, True)
case("cidr-ipv6", _d("ipv6", {"cidr": "2001:db8::/32"}), E, True)
case("cidr-ipv6-miss", _d("ipv6", {"cidr": "2001:db9::/32"}), E, False)
case("cidr-ipv6-vs-ipv4", _d("source-ip", {"cidr": "::/0"}), E, False)
case("cidr-ipv4-vs-ipv6", _d("ipv6", {"cidr": "0.0.0.0/0"}), E, False)
case("cidr-not-ip", _d("state", {"cidr": "0.0.0.0/0"}), E, False)
case("cidr-not-number", _d("c-count", {"cidr": "0.0.0.0/0"}), E, False)
case(
    "cidr-array", {"ips": [{"cidr": "192.168.0.0/16"}]}, {"ips": ["10.1.1.1", "192.168.4.2"]}, True
)
case("cidr-host-bits", _d("source-ip", {"cidr": "10.0.0.1/24"}), E, True)

# --------------------------------------------------------------------------- $or
OR_DOC = {
    "detail": {
        "$or": [
            {"c-count": [{"numeric": [">", 0, "<=", 5]}]},
            {"d-count": [{"numeric": ["<", 10]}]},
            {"x-limit": [{"numeric": ["=", 3.018e2]}]},
        ]
    }
}
case("or-doc", OR_DOC, E, True)
case("or-doc-none", OR_DOC, {"detail": {"c-count": 50, "d-count": 50, "x-limit": 1}}, False)
case("or-doc-third", OR_DOC, {"detail": {"c-count": 50, "d-count": 50, "x-limit": 301.8}}, True)
OR_TOP = {
    "source": ["aws.ec2"],
    "$or": [{"detail-type": ["Other"]}, {"detail": {"state": ["terminated"]}}],
}
case("or-top", OR_TOP, E, True)
case("or-top-base-fails", OR_TOP, {**E, "source": "aws.s3"}, False)
case("or-top-none", {"$or": [{"source": ["x"]}, {"region": ["y"]}]}, E, False)
NESTED_OR = {
    "$or": [
        {"source": ["aws.s3"]},
        {"$or": [{"region": ["eu-west-1"]}, {"detail": {"state": ["terminated"]}}]},
    ]
}
case("or-nested", NESTED_OR, E, True)
case("or-nested-none", NESTED_OR, {**E, "detail": {"state": "running"}}, False)
TWO_ORS = {"$or": [{"a": ["1"]}, {"b": ["1"]}], "detail": {"$or": [{"c": ["1"]}, {"d": ["1"]}]}}
case("or-two", TWO_ORS, {"a": "1", "detail": {"d": "1"}}, True)
case("or-two-half", TWO_ORS, {"a": "1", "detail": {"e": "1"}}, False)
case(
    "or-same-field",
    {"$or": [{"s": [{"prefix": "a"}]}, {"s": [{"suffix": "z"}]}]},
    {"s": "xyz"},
    True,
)
case("or-exists", {"$or": [{"a": [{"exists": False}]}, {"a": ["x"]}]}, {"a": "y"}, False)
case("or-exists-2", {"$or": [{"a": [{"exists": False}]}, {"a": ["x"]}]}, {}, True)
case(
    "or-in-array",
    {"items": {"$or": [{"n": ["a"], "q": [2]}, {"n": ["b"], "q": [1]}]}},
    {"items": [{"n": "a", "q": 1}, {"n": "b", "q": 2}]},
    False,
)
case(
    "or-in-array-ok",
    {"items": {"$or": [{"n": ["a"], "q": [1]}, {"n": ["b"], "q": [1]}]}},
    {"items": [{"n": "a", "q": 1}, {"n": "b", "q": 2}]},
    True,
)

# ------------------------------------------------------------ odd events (no crash)
for i, odd in enumerate(
    [{}, {"source": None}, {"source": []}, {"source": {}}, {"source": [[]]}, {"source": [None]}]
):
    case(f"odd-event-{i}", {"source": ["aws.ec2"]}, odd, False)
case("odd-event-list-source", {"source": ["aws.ec2"]}, {"source": [["aws.ec2"]]}, True)
case("non-object-event", {"a": [{"exists": False}]}, [1, 2], True)
case("non-object-event-2", {"a": ["x"]}, "text", False)
case("unicode-key", {"clé": ["valeur"]}, {"clé": "valeur"}, True)
# event-ruler names a field by its keys joined with dots (observed with Ruler 2.0.1).
case("dotted-event-key", {"a": {"b": ["x"]}}, {"a.b": "x"}, True)
case("dotted-key", {"a.b": ["x"]}, {"a.b": "x"}, True)
case("dotted-pattern-key", {"a.b": ["x"]}, {"a": {"b": "x"}}, True)
case("dotted-mixed", {"a.b": {"c": ["x"]}}, {"a": {"b.c": "x"}}, True)
case("dotted-deep-event", {"a": {"b": {"c": ["x"]}}}, {"a.b.c": "x"}, True)
case("dotted-two-keys", {"a": {"b": ["x"], "c": ["y"]}}, {"a.b": "x", "a.c": "y"}, True)
case("dotted-miss", {"a.b": ["x"]}, {"a": {"b": "y"}}, False)
case("dotted-not-prefix", {"a.b": ["x"]}, {"ab": "x"}, False)
case("dotted-exists-false", {"a.b": [{"exists": False}]}, {"a": {"b": 1}}, False)
case("dotted-exists-false-dotted", {"a": {"b": [{"exists": False}]}}, {"a.b": 1}, False)
case("dotted-array", {"a": {"b": ["x"]}}, {"a.b": ["y", "x"]}, True)
case("nan-event", {"n": [{"numeric": [">", 0]}]}, {"n": float("nan")}, False)
case("inf-event", {"n": [{"numeric": [">", 0]}]}, {"n": float("inf")}, False)  # not JSON
case(
    "reserved-name-outside-or",
    {"prefix": ["x"], "numeric": [1]},
    {"prefix": "x", "numeric": 1},
    True,
)
case(
    "or-non-reserved-operator-like",
    {"$or": [{"contains": ["x"]}, {"b": ["y"]}]},
    {"contains": "x"},
    True,
)
case("tuple-event", {"a": ["x"]}, {"a": ("y", "x")}, True)


# ================================================================ invalid patterns
INVALID_CASES: list[tuple[str, Any, str]] = [
    ("not-object", ["a"], "$"),
    ("string-pattern-not-object", '"x"', "$"),
    ("leaf-string", {"source": "aws.ec2"}, "$.source"),
    ("leaf-number", {"detail": {"n": 5}}, "$.detail.n"),
    ("leaf-null", {"detail": {"n": None}}, "$.detail.n"),
    ("leaf-bool", {"n": True}, "$.n"),
    ("empty-array", {"source": []}, "$.source"),
    ("empty-nested-object", {"detail": {}}, "$.detail"),
    ("nested-array", {"source": [["a"]]}, "$.source[0]"),
    ("unknown-operator", {"a": [{"contains": "x"}]}, "$.a[0]"),
    ("two-operators", {"a": [{"prefix": "x", "suffix": "y"}]}, "$.a[0]"),
    ("empty-operator", {"a": [{}]}, "$.a[0]"),
    ("prefix-number", {"a": [{"prefix": 5}]}, "$.a[0].prefix"),
    ("prefix-null", {"a": [{"prefix": None}]}, "$.a[0].prefix"),
    ("prefix-list", {"a": [{"prefix": ["x"]}]}, "$.a[0].prefix"),
    ("prefix-bad-object", {"a": [{"prefix": {"wildcard": "x"}}]}, "$.a[0].prefix"),
    (
        "prefix-ic-number",
        {"a": [{"prefix": {"equals-ignore-case": 1}}]},
        "$.a[0].prefix.equals-ignore-case",
    ),
    ("suffix-number", {"a": [{"suffix": 5}]}, "$.a[0].suffix"),
    ("suffix-bad-object", {"a": [{"suffix": {"x": "y"}}]}, "$.a[0].suffix"),
    ("eic-number", {"a": [{"equals-ignore-case": 5}]}, "$.a[0].equals-ignore-case"),
    ("eic-object", {"a": [{"equals-ignore-case": {"x": 1}}]}, "$.a[0].equals-ignore-case"),
    ("eic-list", {"a": [{"equals-ignore-case": ["x"]}]}, "$.a[0].equals-ignore-case"),
    ("wildcard-number", {"a": [{"wildcard": 5}]}, "$.a[0].wildcard"),
    ("wildcard-consecutive", {"a": [{"wildcard": "a**b"}]}, "$.a[0].wildcard"),
    ("wildcard-bad-escape", {"a": [{"wildcard": "a\\b"}]}, "$.a[0].wildcard"),
    ("wildcard-trailing-backslash", {"a": [{"wildcard": "a\\"}]}, "$.a[0].wildcard"),
    ("wildcard-too-complex", {"a": [{"wildcard": "*a" * 11}]}, "$.a[0].wildcard"),
    ("ab-empty-list", {"a": [{"anything-but": []}]}, "$.a[0].anything-but"),
    ("ab-mixed-list", {"a": [{"anything-but": ["x", 1]}]}, "$.a[0].anything-but"),
    ("ab-bool", {"a": [{"anything-but": True}]}, "$.a[0].anything-but"),
    ("ab-null", {"a": [{"anything-but": None}]}, "$.a[0].anything-but"),
    ("ab-list-null", {"a": [{"anything-but": [None]}]}, "$.a[0].anything-but"),
    (
        "ab-nested-ab",
        {"a": [{"anything-but": {"anything-but": "x"}}]},
        "$.a[0].anything-but.anything-but",
    ),
    ("ab-numeric", {"a": [{"anything-but": {"numeric": [">", 1]}}]}, "$.a[0].anything-but.numeric"),
    ("ab-prefix-number", {"a": [{"anything-but": {"prefix": 1}}]}, "$.a[0].anything-but.prefix"),
    ("ab-prefix-empty", {"a": [{"anything-but": {"prefix": ""}}]}, "$.a[0].anything-but.prefix"),
    (
        "ab-suffix-list-empty-item",
        {"a": [{"anything-but": {"suffix": ["x", ""]}}]},
        "$.a[0].anything-but.suffix[1]",
    ),
    (
        "ab-prefix-list-number",
        {"a": [{"anything-but": {"prefix": ["x", 1]}}]},
        "$.a[0].anything-but.prefix[1]",
    ),
    (
        "ab-prefix-empty-list",
        {"a": [{"anything-but": {"prefix": []}}]},
        "$.a[0].anything-but.prefix",
    ),
    ("ab-big-int", {"a": [{"anything-but": 2**60}]}, "$.a[0].anything-but"),
    ("ab-list-big-int", {"a": [{"anything-but": [1, 2**53 + 1]}]}, "$.a[0].anything-but[1]"),
    ("numeric-not-comparable", {"a": [{"numeric": [">", 2**53 + 1]}]}, "$.a[0].numeric[1]"),
    ("numeric-beyond-double", {"a": [{"numeric": ["<", 10**400]}]}, "$.a[0].numeric[1]"),
    ("numeric-eq-not-comparable", {"a": [{"numeric": ["=", 2**60]}]}, "$.a[0].numeric[1]"),
    ("numeric-range-huge", {"a": [{"numeric": [">", -(10**400), "<", 1]}]}, "$.a[0].numeric[1]"),
    ("exactly-number", {"a": [{"exactly": 5}]}, "$.a[0].exactly"),
    ("cidr-32", {"a": [{"cidr": "10.0.0.1/32"}]}, "$.a[0].cidr"),
    ("cidr-128", {"a": [{"cidr": "2001:db8::1/128"}]}, "$.a[0].cidr"),
    ("cidr-no-slash", {"a": [{"cidr": "10.0.0.1"}]}, "$.a[0].cidr"),
    ("cidr-two-slashes", {"a": [{"cidr": "10.0.0.0/8/8"}]}, "$.a[0].cidr"),
    ("cidr-negative", {"a": [{"cidr": "10.0.0.0/-1"}]}, "$.a[0].cidr"),
    ("cidr-mask-text", {"a": [{"cidr": "10.0.0.0/x"}]}, "$.a[0].cidr"),
    ("cidr-space", {"a": [{"cidr": " 10.0.0.0/8"}]}, "$.a[0].cidr"),
    ("cidr-hostname", {"a": [{"cidr": "localhost/8"}]}, "$.a[0].cidr"),
    ("or-reserved-name", {"$or": [{"prefix": ["x"]}, {"b": ["y"]}]}, "$.$or[0].prefix"),
    ("or-reserved-numeric-op", {"$or": [{"a": ["x"]}, {">=": [1]}]}, '$.$or[1][">="]'),
    (
        "or-reserved-nested",
        {"$or": [{"a": {"numeric": [1]}}, {"b": ["y"]}]},
        "$.$or[0].a.numeric",
    ),
    (
        "or-reserved-future",
        {"x": {"$or": [{"a": ["1"]}, {"ip-address-in-range": ["y"]}]}},
        "$.x.$or[1].ip-address-in-range",
    ),
    (
        "ab-eic-number",
        {"a": [{"anything-but": {"equals-ignore-case": 1}}]},
        "$.a[0].anything-but.equals-ignore-case",
    ),
    (
        "ab-eic-list-number",
        {"a": [{"anything-but": {"equals-ignore-case": ["x", 1]}}]},
        "$.a[0].anything-but.equals-ignore-case[1]",
    ),
    (
        "ab-eic-empty-list",
        {"a": [{"anything-but": {"equals-ignore-case": []}}]},
        "$.a[0].anything-but.equals-ignore-case",
    ),
    (
        "ab-wildcard-bad",
        {"a": [{"anything-but": {"wildcard": "a**"}}]},
        "$.a[0].anything-but.wildcard",
    ),
    (
        "ab-wildcard-list-bad",
        {"a": [{"anything-but": {"wildcard": ["x*", "a**"]}}]},
        "$.a[0].anything-but.wildcard[1]",
    ),
    (
        "ab-two-keys",
        {"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]},
        "$.a[0].anything-but",
    ),
    ("ab-nan", {"a": [{"anything-but": float("nan")}]}, "$.a[0].anything-but"),
    ("ab-list-inf", {"a": [{"anything-but": [1, float("inf")]}]}, "$.a[0].anything-but[1]"),
    ("numeric-not-list", {"a": [{"numeric": 5}]}, "$.a[0].numeric"),
    ("numeric-empty", {"a": [{"numeric": []}]}, "$.a[0].numeric"),
    ("numeric-odd", {"a": [{"numeric": [">", 1, "<"]}]}, "$.a[0].numeric"),
    ("numeric-too-long", {"a": [{"numeric": [">", 1, "<", 5, "=", 3]}]}, "$.a[0].numeric"),
    ("numeric-bad-op", {"a": [{"numeric": ["!=", 1]}]}, "$.a[0].numeric[0]"),
    ("numeric-op-number", {"a": [{"numeric": [1, 1]}]}, "$.a[0].numeric[0]"),
    ("numeric-string-operand", {"a": [{"numeric": [">", "1"]}]}, "$.a[0].numeric[1]"),
    ("numeric-bool-operand", {"a": [{"numeric": [">", True]}]}, "$.a[0].numeric[1]"),
    ("numeric-null-operand", {"a": [{"numeric": ["<", None]}]}, "$.a[0].numeric[1]"),
    ("numeric-inf", {"a": [{"numeric": ["<", float("inf")]}]}, "$.a[0].numeric[1]"),
    ("numeric-reversed", {"a": [{"numeric": ["<", 5, ">", 1]}]}, "$.a[0].numeric"),
    ("numeric-two-lower", {"a": [{"numeric": [">", 1, ">", 5]}]}, "$.a[0].numeric"),
    ("numeric-eq-in-range", {"a": [{"numeric": ["=", 1, "<", 5]}]}, "$.a[0].numeric"),
    ("numeric-empty-range", {"a": [{"numeric": [">", 5, "<", 5]}]}, "$.a[0].numeric"),
    ("numeric-inverted-range", {"a": [{"numeric": [">", 10, "<", 5]}]}, "$.a[0].numeric"),
    ("numeric-second-bad-operand", {"a": [{"numeric": [">", 1, "<", "x"]}]}, "$.a[0].numeric[3]"),
    ("exists-string", {"a": [{"exists": "true"}]}, "$.a[0].exists"),
    ("exists-number", {"a": [{"exists": 1}]}, "$.a[0].exists"),
    ("cidr-bad", {"a": [{"cidr": "10.0.0.0/33"}]}, "$.a[0].cidr"),
    ("cidr-garbage", {"a": [{"cidr": "not-an-ip"}]}, "$.a[0].cidr"),
    ("cidr-number", {"a": [{"cidr": 10}]}, "$.a[0].cidr"),
    ("cidr-ipv6-bad", {"a": [{"cidr": "2001:db8::/129"}]}, "$.a[0].cidr"),
    ("or-not-list", {"$or": {"a": ["x"]}}, "$.$or"),
    ("or-one", {"$or": [{"a": ["x"]}]}, "$.$or"),
    ("or-empty", {"$or": []}, "$.$or"),
    ("or-non-object", {"$or": [{"a": ["x"]}, ["b"]]}, "$.$or[1]"),
    ("or-empty-branch", {"$or": [{"a": ["x"]}, {}]}, "$.$or[1]"),
    ("or-bad-inside", {"detail": {"$or": [{"a": ["x"]}, {"b": "y"}]}}, "$.detail.$or[1].b"),
    ("nan-value", {"a": [float("nan")]}, "$.a[0]"),
    ("inf-value", {"a": [float("-inf")]}, "$.a[0]"),
    ("set-value", {"a": [{1, 2}]}, "$.a[0]"),
    ("non-string-key", {1: ["x"]}, "$"),
    ("deep-path", {"detail": {"x": {"y": [{"prefix": 1}]}}}, "$.detail.x.y[0].prefix"),
    ("second-alternative", {"a": ["ok", {"bogus": 1}]}, "$.a[1]"),
    ("odd-key-path", {"a b": {"c": 5}}, '$["a b"].c'),
    ("too-large", {"a": ["x" * 5000]}, "$"),
    ("bad-json-text", "{not json", "$"),
]
