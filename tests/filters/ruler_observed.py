"""Outcomes observed with AWS event-ruler 2.0.1 (``Machine.rulesForJSONEvent``, OpenJDK 17).

Recorded with the engine helper's harness (``/work/scratch/ruler/match``) while
issue 8 was worked on; the Java is not needed to run the tests. Each batch holds
patterns, events (JSON text) and, per pattern, whether Ruler accepted it and the
events it matched. ``KEPT_DIFFERENCES`` are the outcomes where eventpatterns
deliberately differs (docs/filters.md, "Differences from EventBridge/event-ruler").
"""

from __future__ import annotations

# (pattern, accepted by Ruler, indices of the batch's events Ruler matched)
Batch = tuple[list[str], list[tuple[str, bool, list[int]]]]

BATCHES: list[Batch] = [
    (
        [
            '{"n": 1152921504606846976}',
            '{"n": 1.152921504606847E18}',
            '{"n": 9007199254740993}',
            '{"n": 100000000000000000000000}',
            '{"n": 1e23}',
            '{"n": 99999999999999991611392}',
            '{"ip": "2001:DB8:0:0::1"}',
            '{"ip": "10.0.0.1"}',
            '{"a": {"b": "x"}}',
            '{"a.b": "x"}',
            '{"s": "eu-west"}',
            '{"s": "ap-south"}',
            '{"n": 1e400}',
            '{"n": 5.0}',
            '{"prefix": "x"}',
            '{"b": "y"}',
        ],
        [
            ('{"n": [1152921504606846976]}', True, [0]),
            ('{"n": [{"numeric": [">", 9007199254740992]}]}', True, [1, 4]),
            ('{"n": [100000000000000000000000]}', True, [3]),
            ('{"n": [{"numeric": ["<=", 1e23]}]}', False, []),
            ('{"n": [{"anything-but": 5}]}', True, [0, 1, 2, 3, 4, 5, 12]),
            ('{"ip": ["2001:db8::1"]}', True, [6]),
            ('{"ip": [{"exactly": "2001:db8::1"}]}', True, []),
            ('{"ip": [{"cidr": "10.0.0.1/32"}]}', False, []),
            ('{"ip": [{"cidr": "10.0.0.0/31"}]}', True, [7]),
            ('{"a": {"b": ["x"]}}', True, [8, 9]),
            ('{"a.b": ["x"]}', True, [8, 9]),
            ('{"$or": [{"prefix": ["x"]}, {"b": ["y"]}]}', False, []),
            ('{"s": [{"anything-but": {"prefix": ["eu-", "us-"]}}]}', True, [11]),
            ('{"s": [{"anything-but": {"suffix": []}}]}', False, []),
            ('{"n": [{"numeric": [">", 1e308]}]}', True, []),
            ('{"n": [5]}', True, [13]),
            ('{"s": [{"anything-but": {"equals-ignore-case": []}}]}', False, []),
            ('{"ip": ["10.0.0.1"]}', True, [7]),
            ('{"n": [{"numeric": ["=", 1152921504606846976]}]}', False, []),
            ("{}", False, []),
            ('{"x": {}}', False, []),
        ],
    ),
    (
        [
            '{"a": "x"}',
            '{"a": "y"}',
            '{"a": 1}',
            '{"a": 3}',
            '{"a": null}',
            '{"a": true}',
            '{"a": ["x", "z"]}',
            '{"a": [1, 2]}',
            '{"a": "10.1.2.3"}',
            '{"a": "10.0.0.1"}',
            '{"$or": {"a": "x"}}',
            '{"a": {"b": 1}}',
            "{}",
            '{"a": "abc"}',
        ],
        [
            ('{"$or": {"a": ["x"]}}', True, [10]),
            ('{"$or": [{"a": ["x"]}]}', False, []),
            ('{"a": [{"anything-but": {"prefix": "x"}}]}', True, [1, 2, 3, 4, 5, 6, 7, 8, 9, 13]),
            ('{"a": [{"anything-but": ["x", "y"]}]}', True, [2, 3, 4, 5, 6, 7, 8, 9, 13]),
            ('{"a": [{"anything-but": [1, 2]}]}', True, [0, 1, 3, 4, 5, 6, 8, 9, 13]),
            ('{"a": [{"anything-but": 2}]}', True, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13]),
            ('{"a": [{"anything-but": 9007199254740993}]}', False, []),
            ('{"a": [{"exists": false}]}', True, [10, 11, 12]),
            ('{"a": [{"equals-ignore-case": "ABC"}]}', True, [13]),
            ('{"a": [{"wildcard": "a*b*c*d*e*f*g*h*i*j*k*l*m"}]}', True, []),
            ('{"a": [{"cidr": "10.0.0.0/8"}]}', True, [8, 9]),
            ('{"a": [{"cidr": "::ffff:10.0.0.0/104"}]}', False, []),
            ('{"a": [{"cidr": "10.0.0.0/+8"}]}', True, [8, 9]),
            ('{"a": [{"cidr": "010.0.0.0/8"}]}', True, [8, 9]),
            ('{"a": [null]}', True, [4]),
            ('{"a": [{"prefix": ""}]}', True, [0, 1, 6, 8, 9, 13]),
            ('{"x": {"$or": [{"exists": ["q"]}, {"b": ["y"]}]}}', False, []),
            (
                '{"a": [{"anything-but": {"wildcard": ["x*", "*y"]}}]}',
                True,
                [2, 3, 4, 5, 6, 7, 8, 9, 13],
            ),
            ('{"a": ["10.0.0.01"]}', True, [9]),
        ],
    ),
    (
        [
            '{"a": "x"}',
            '{"a": "Y"}',
            '{"a": "xyz"}',
            '{"a": "x*y"}',
            '{"a": -0.0}',
            '{"a": 0}',
            '{"a": 1.0}',
            '{"a": 100}',
            '{"a": true}',
            '{"a": "true"}',
            '{"a": [{"c": "1"}, {"b": 2}]}',
            '{"a": [{"c": "1", "b": 2}]}',
            '{"a": "2001:db8:ffff::1"}',
            '{"c": {"d": "z"}}',
            '{"b": "y"}',
            '{"a": {"c": 5}}',
            '{"a.c": 5}',
            '{"a": 0.5}',
        ],
        [
            (
                '{"a": [{"anything-but": {"equals-ignore-case": ["X", "y"]}}]}',
                True,
                [2, 3, 4, 5, 6, 7, 8, 9, 12, 17],
            ),
            (
                '{"a": [{"anything-but": {"suffix": "z"}}]}',
                True,
                [0, 1, 3, 4, 5, 6, 7, 8, 9, 12, 17],
            ),
            ('{"a": [{"numeric": ["=", 0]}]}', True, [4, 5]),
            ('{"a": [0]}', True, [4, 5]),
            ('{"a": [{"numeric": [">", -1, "<=", 1]}]}', True, [4, 5, 6, 17]),
            ('{"a": [{"wildcard": "x\\\\*y"}]}', True, [3]),
            ('{"a": [{"wildcard": "x*y"}]}', True, [3]),
            ('{"a": {"b": [{"exists": false}], "c": ["1"]}}', True, []),
            ('{"a": [{"prefix": {"equals-ignore-case": "X"}}]}', True, [0, 2, 3]),
            ('{"a": [{"suffix": {"equals-ignore-case": "Z"}}]}', True, [2]),
            ('{"a": [{"cidr": "2001:db8::/32"}]}', True, [12]),
            ('{"a": [true]}', True, [8]),
            ('{"a": ["true"]}', True, [9]),
            (
                '{"$or": [{"a": ["x"]}, {"$or": [{"b": ["y"]}, {"c": {"d": ["z"]}}]}]}',
                True,
                [0, 13, 14],
            ),
            ('{"$or": [{"a": ["x"]}, {"c": {"exactly": ["z"]}}]}', False, []),
            ('{"a": [{"anything-but": [0.5, 1e2]}]}', True, [0, 1, 2, 3, 4, 5, 6, 8, 9, 12]),
            ('{"a.c": [{"exists": true}]}', True, [10, 11, 15, 16]),
        ],
    ),
]

# pattern -> (accepted by eventpatterns, the events it matches, why it differs)
KEPT_DIFFERENCES: dict[str, tuple[bool, list[int], str]] = {
    '{"n": [{"numeric": [">", 9007199254740992]}]}': (
        True, [1, 3, 4],
        "1e23 is comparable (its shortest decimal is 1e23); Java 17's Double.toString"
        " prints 9.999999999999999E22, so Ruler on it cannot compare 10**23",
    ),
    '{"n": [100000000000000000000000]}': (
        True, [3, 4], "the same: 10**23 and 1e23 are one double, compared as such",
    ),
    '{"n": [{"numeric": ["<=", 1e23]}]}': (
        True, [1, 3, 4, 13], "the same: Ruler on Java 17 refuses 1e23 as 'Cannot compare number'",
    ),
    "{}": (True, list(range(16)), "the empty pattern matches every event (no filter)"),
    '{"$or": {"a": ["x"]}}': (
        False, [],
        "Ruler's Machine falls back to its legacy compiler, which reads $or as a field name;"
        " eventpatterns refuses a $or that is not an array of two or more objects",
    ),
    '{"a": [{"wildcard": "a*b*c*d*e*f*g*h*i*j*k*l*m"}]}': (
        False, [], "Limits.max_wildcards (10 '*' per value) bounds a wildcard's cost",
    ),
    '{"a": [{"cidr": "010.0.0.0/8"}]}': (
        False, [], "leading zeros in IPv4 are ambiguous (octal?); Python's ipaddress refuses them",
    ),
    '{"a": ["10.0.0.01"]}': (
        True, [], "not an IP address to Python (leading zero), so compared as a plain string",
    ),
}  # fmt: skip
