#!/usr/bin/env python3
"""Write tests/golden/cases.jsonl: inputs for the Go golden generator.

Usage: python3 make_cases.py [OUT]   (OUT defaults to cases.jsonl next to this
file; "-" writes to stdout). Standard library only, deterministic (seeded).

Each line is one JSON object:
    {"name": unique label, "subject": str, "reply": str,
     "data_b64": standard base64 of the payload bytes,
     "now_unix_nano": int64 entry time, "tz": IANA zone name}

Two parts:
  * hand-picked tricky cases (names describe what they test);
  * seeded random cases (the bulk): random structured events with random field
    types / spellings / nested data, mutations of valid events, random byte
    strings, random replies / subjects / zones / entry times.
"""

from __future__ import annotations

import base64
import json
import os
import random
import struct
import sys

SEED = 20250111
N_RANDOM_EVENTS = 620
N_MUTATIONS = 260
N_RANDOM_BYTES = 120
N_RANDOM_ENVELOPES = 90

NOW = 1736591400123456789  # 2025-01-11T10:30:00.123456789Z
JS_TS = 1736591399987654321  # 2025-01-11T10:29:59.987654321Z
STREAM = "EVENTS"
CONSUMER = "events-audit-durable"
REPLY = f"$JS.ACK.{STREAM}.{CONSUMER}.1.42.42.{JS_TS}.7"  # v1 form (9 tokens)
SUBJECT = "events.user.action"
TS = "2025-01-11T10:30:00Z"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

BASIC = (
    b'{"id":"event-12345","type":"user.action","source":"user-service",'
    b'"timestamp":"2025-01-11T10:30:00Z","data":{"action":"login","user_id":"67890"}}'
)

cases: list[dict] = []
_names: set[str] = set()


def slug(s: str) -> str:
    """ASCII-only label for s (other characters as uXXXX)."""
    return "".join(
        c if c.isascii() and (c.isalnum() or c in "-_.+") else f"u{ord(c):04X}" for c in s
    )


def add(name, data, *, subject=SUBJECT, reply=REPLY, now=NOW, tz="UTC"):
    if isinstance(data, str):
        data = data.encode()
    assert isinstance(data, bytes), name
    assert name not in _names, f"duplicate case name {name}"
    assert name.isascii() and name.isprintable() and " " not in name, name
    assert INT64_MIN <= now <= INT64_MAX, name
    _names.add(name)
    cases.append(
        {
            "name": name,
            "subject": subject,
            "reply": reply,
            "data_b64": base64.b64encode(data).decode("ascii"),
            "now_unix_nano": now,
            "tz": tz,
        }
    )


# ---------------------------------------------------------------------------
# JSON text builders. bytes anywhere = verbatim JSON text; other Python values
# are encoded with json.dumps (compact, non-ASCII raw).

OMIT = object()


def enc(v) -> bytes:
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def obj(*pairs) -> bytes:
    return b"{" + b",".join(enc(k) + b":" + enc(v) for k, v in pairs) + b"}"


DEFAULTS = {
    "id": "evt-1",
    "type": "test.case",
    "source": "golden",
    "timestamp": TS,
    "data": {"k": "v"},
}


def event(**kw) -> bytes:
    """Event with the five fields in order; kw overrides (OMIT drops a field)."""
    f = dict(DEFAULTS)
    f.update(kw)
    return obj(*[(k, v) for k, v in f.items() if v is not OMIT])


def with_data(data_json: bytes, **kw) -> bytes:
    return event(data=data_json, **kw)


def js_reply(
    delivered="1",
    sseq="42",
    cseq="42",
    ts=str(JS_TS),
    pending="7",
    stream=STREAM,
    consumer=CONSUMER,
) -> str:
    return f"$JS.ACK.{stream}.{consumer}.{delivered}.{sseq}.{cseq}.{ts}.{pending}"


def js_reply_v2(
    domain="hub",
    acc="ACCHASH",
    stream=STREAM,
    consumer=CONSUMER,
    delivered="2",
    sseq="43",
    cseq="44",
    ts=str(JS_TS),
    pending="0",
    extra=("RNDTOKEN",),
) -> str:
    toks = ["$JS", "ACK", domain, acc, stream, consumer, delivered, sseq, cseq, ts, pending]
    return ".".join(toks + list(extra))


def u64_token(v: int) -> str:
    """A digit string that nats.go's wrapping parseNum turns into int64 v."""
    return str(v % 2**64)


# ===========================================================================
# Hand-picked cases
# ===========================================================================

# --- baseline ---------------------------------------------------------------
add("canonical_event", BASIC)
add("canonical_event_no_reply", BASIC, reply="")
add("raw_simple_text", "Simple text message")
add("raw_simple_text_no_reply", "Simple text message", reply="")
add("missing_fields_only_id", b'{"id":"only-id"}')
add("empty_object", b"{}")
add("empty_object_spaces", b"{ }")
add(
    "unknown_extra_fields_ignored",
    b'{"id":"x","extra":{"a":1},"type":"t","source":"s","timestamp":"2025-01-11T10:30:00Z","zz":[1]}',
)
add("surrounding_whitespace", b' \n\t{"id":"ws","type":"t"} \r\n')
add(
    "fields_in_reverse_order",
    b'{"data":{"b":2},"timestamp":"2025-01-11T10:30:00Z","source":"s","type":"t","id":"rev"}',
)

# --- key case-insensitivity / folding ---------------------------------------
add(
    "keys_upper_case",
    b'{"ID":"upper","TYPE":"T","SOURCE":"S","TIMESTAMP":"2025-01-11T10:30:00Z","DATA":{"K":"v"}}',
)
add(
    "keys_mixed_case",
    b'{"iD":"mixed","TyPe":"T","SoUrCe":"S","TimeStamp":"2025-01-11T10:30:00Z","Data":{"K":"v"}}',
)
add("key_dotless_i_U+0131", '{"ıd":"dotless","type":"t","source":"s"}'.encode())
add("key_dotted_capital_I_U+0130", '{"İD":"dotted","type":"t"}'.encode())
add("key_long_s_U+017F_source", '{"id":"x","ſource":"long-s","type":"t"}'.encode())
add("key_long_s_U+017F_timestamp", '{"id":"x","timeſtamp":"2025-01-11T10:30:00Z"}'.encode())
add("key_long_s_upper_SOURCE_mix", '{"id":"x","ſOURCE":"mix"}'.encode())
add("key_kelvin_sign_U+212A", '{"id":"x","\u212aey":"k","data":{"\u212a":1,"k":2}}'.encode())
add("key_escaped_u0069d", b'{"\\u0069d":"escaped-key","\\u0074ype":"t"}')
add("key_escaped_upper_u0049D", b'{"\\u0049\\u0044":"ESC"}')
add("key_escaped_long_s", b'{"id":"x","\\u017fource":"esc-long-s"}')
add("key_escaped_slash_inside", b'{"i\\/d":"slash","id\\/":"x"}')
add("key_with_invalid_utf8_byte", b'{"i\xffd":"bad-key","id":"good","data":{"k\xfe":"v"}}')
add("key_invalid_utf8_only", b'{"\xff":"x","type":"t"}')
add("key_with_nul_escape", b'{"id\\u0000":"nul","id":"ok"}')
add("key_with_trailing_space", b'{"id ":"space","type":"t"}')
add("key_fullwidth_id", '{"ｉｄ":"fullwidth","type":"t"}'.encode())
add("key_turkish_capital_dotted_in_data", '{"id":"x","data":{"İ":1,"i":2,"I":3,"ı":4}}'.encode())
add("key_case_variants_last_wins", b'{"id":"a","ID":"b","Id":"c"}')
add("key_exact_then_folded", b'{"type":"exact","TYPE":"folded"}')
add("key_folded_then_exact", b'{"TYPE":"folded","type":"exact"}')

# --- duplicate keys -----------------------------------------------------------
add("dup_id_last_wins", b'{"id":"first","id":"second","type":"t"}')
add("dup_data_objects_merge", b'{"id":"m","data":{"a":1,"b":2},"data":{"b":3,"c":4}}')
add("dup_data_case_variant_merge", b'{"id":"m","data":{"a":1},"DATA":{"z":26}}')
add("dup_data_nested_not_merged", b'{"id":"m","data":{"n":{"x":1}},"data":{"n":{"y":2}}}')
add("dup_data_then_null", b'{"id":"m","data":{"a":1},"data":null}')
add("dup_data_null_then_object", b'{"id":"m","data":null,"data":{"a":1}}')
add("dup_data_then_empty_object", b'{"id":"m","data":{"a":1},"data":{}}')
add("dup_data_then_array_is_raw", b'{"id":"m","data":{"a":1},"data":[1]}')
add("dup_id_then_null_keeps_first", b'{"id":"kept","id":null,"type":"t"}')
add("dup_type_then_null_keeps_first", b'{"id":"x","type":"kept","type":null}')
add(
    "dup_timestamp_then_null_keeps_first",
    b'{"id":"x","timestamp":"2025-01-11T10:30:00+05:30","timestamp":null}',
)
add(
    "dup_timestamp_last_wins",
    b'{"id":"x","timestamp":"2025-01-11T10:30:00Z","timestamp":"2000-02-29T12:00:00-03:00"}',
)
add("dup_id_second_is_number_raw", b'{"id":"ok","id":5}')
add("dup_keys_inside_data_last_wins", b'{"id":"x","data":{"k":1,"k":2,"k":{"z":3}}}')
add("dup_data_three_times_merge", b'{"data":{"a":1},"data":{"b":2},"Data":{"a":3}}')

# --- top level oddities -----------------------------------------------------
for name, payload in [
    ("top_null", b"null"),
    ("top_null_padded", b"  null  "),
    ("top_null_newline", b"null\n"),
    ("top_nul_truncated", b"nul"),
    ("top_NULL_upper", b"NULL"),
    ("empty_payload", b""),
    ("whitespace_only_space", b" "),
    ("whitespace_only_mixed", b" \t\r\n "),
    ("whitespace_formfeed_not_json_ws", b"\x0c{}"),
    ("whitespace_vtab_not_json_ws", b"\x0b{}"),
    ("whitespace_nbsp_not_json_ws", b"\xc2\xa0{}"),
    ("bom_prefix_is_raw", b"\xef\xbb\xbf" + BASIC),
    ("trailing_garbage", b'{"id":"x"} trailing'),
    ("trailing_garbage_nul", b'{"id":"x"}\x00'),
    ("two_objects", b"{}{}"),
    ("two_objects_space", b'{"id":"a"} {"id":"b"}'),
    ("top_array_empty", b"[]"),
    ("top_array_of_event", b'[{"id":"x"}]'),
    ("top_array_numbers", b"[1,2,3]"),
    ("top_string", b'"just a string"'),
    ("top_number", b"42"),
    ("top_number_neg_zero", b"-0"),
    ("top_number_float", b"1.5e3"),
    ("top_true", b"true"),
    ("top_false", b"false"),
    ("trailing_comma", b'{"id":"x",}'),
    ("single_quotes", b"{'id':'x'}"),
    ("unquoted_key", b'{id:"x"}'),
    ("missing_colon", b'{"id" "x"}'),
    ("missing_value", b'{"id":}'),
    ("truncated_object", b'{"id":"x"'),
    ("truncated_string", b'{"id":"x'),
    ("extra_closing_brace", b'{"id":"x"}}'),
    ("only_open_brace", b"{"),
    ("only_close_brace", b"}"),
    ("comment_in_json", b'{"id":"x" /* c */}'),
    ("nested_top_object_no_fields", b'{"wrapper":{"id":"x"}}'),
    ("python_none", b'{"id":None}'),
    ("json_with_crlf_pretty", b'{\r\n  "id": "pretty",\r\n  "type": "t"\r\n}'),
]:
    add(name, payload)

# --- wrong types --------------------------------------------------------------
for name, field, val in [
    ("id_number", "id", b"12345"),
    ("id_float", "id", b"1.5"),
    ("id_bool", "id", b"true"),
    ("id_object", "id", b'{"a":1}'),
    ("id_array", "id", b'["a"]'),
    ("id_null_only", "id", b"null"),
    ("type_bool", "type", b"false"),
    ("type_number", "type", b"0"),
    ("source_array", "source", b"[]"),
    ("source_null", "source", b"null"),
    ("data_array", "data", b"[1,2]"),
    ("data_empty_array", "data", b"[]"),
    ("data_string", "data", b'"str"'),
    ("data_number", "data", b"1"),
    ("data_true", "data", b"true"),
    ("data_null", "data", b"null"),
    ("data_empty_object", "data", b"{}"),
    ("timestamp_number", "timestamp", b"1736591400"),
    ("timestamp_object", "timestamp", b'{"s":1}'),
    ("timestamp_array", "timestamp", b'["2025-01-11T10:30:00Z"]'),
    ("timestamp_bool", "timestamp", b"true"),
    ("timestamp_null", "timestamp", b"null"),
    ("timestamp_empty_string", "timestamp", b'""'),
]:
    add("wrongtype_" + name, event(**{field: val}))
add("wrongtype_id_number_and_data_merge_error_still_raw", b'{"id":1,"data":{"a":1}}')
add(
    "wrongtype_after_valid_fields_raw",
    b'{"id":"x","type":"t","source":"s","data":{"a":1},"timestamp":5}',
)
add("wrongtype_first_then_syntax_error", b'{"id":1,"type":"t"')

# --- event timestamps ----------------------------------------------------------
TIMESTAMPS = [
    ("z", "2025-01-11T10:30:00Z"),
    ("offset_plus_0530", "2025-01-11T16:00:00+05:30"),
    ("offset_minus_0700", "2025-01-11T03:30:00-07:00"),
    ("offset_plus_0000", "2025-01-11T10:30:00+00:00"),
    ("offset_minus_0000", "2025-01-11T10:30:00-00:00"),
    ("offset_plus_2359", "2025-01-11T10:30:00+23:59"),
    ("offset_minus_2359", "2025-01-11T10:30:00-23:59"),
    ("offset_plus_2400", "2025-01-11T10:30:00+24:00"),
    ("offset_minus_2400", "2025-01-11T10:30:00-24:00"),
    ("offset_plus_9999", "2025-01-11T10:30:00+99:99"),
    ("offset_plus_0560", "2025-01-11T10:30:00+05:60"),
    ("offset_plus_0060", "2025-01-11T10:30:00+00:60"),
    ("offset_plus_2460", "2025-01-11T10:30:00+24:60"),
    ("offset_minus_2460", "2025-01-11T10:30:00-24:60"),
    ("offset_plus_0061", "2025-01-11T10:30:00+00:61"),
    ("offset_plus_2500", "2025-01-11T10:30:00+25:00"),
    ("offset_single_digit_hour", "2025-01-11T10:30:00+5:30"),
    ("offset_no_colon", "2025-01-11T10:30:00+0530"),
    ("offset_hours_only", "2025-01-11T10:30:00+05"),
    ("offset_seconds", "2025-01-11T10:30:00+05:30:15"),
    ("offset_plus_1400", "2025-01-11T10:30:00+14:00"),
    ("offset_plus_0545", "2025-01-11T10:30:00+05:45"),
    ("offset_plus_1245_chatham", "2025-01-11T10:30:00+13:45"),
    ("z_then_offset", "2025-01-11T10:30:00Z+00:00"),
    ("no_zone", "2025-01-11T10:30:00"),
    ("no_seconds", "2025-01-11T10:30Z"),
    ("date_only", "2025-01-11"),
    ("lowercase_t", "2025-01-11t10:30:00Z"),
    ("lowercase_z", "2025-01-11T10:30:00z"),
    ("lowercase_t_and_z", "2025-01-11t10:30:00z"),
    ("space_separator", "2025-01-11 10:30:00Z"),
    ("underscore_separator", "2025-01-11_10:30:00Z"),
    ("hour_24", "2025-01-11T24:00:00Z"),
    ("hour_25", "2025-01-11T25:00:00Z"),
    ("minute_60", "2025-01-11T10:60:00Z"),
    ("leap_second_2359_60", "2016-12-31T23:59:60Z"),
    ("leap_second_with_fraction", "2016-12-31T23:59:60.5Z"),
    ("feb29_leap_2024", "2024-02-29T12:00:00Z"),
    ("feb29_leap_2000", "2000-02-29T12:00:00Z"),
    ("feb29_nonleap_2025", "2025-02-29T12:00:00Z"),
    ("feb29_nonleap_1900", "1900-02-29T12:00:00Z"),
    ("feb29_nonleap_2100", "2100-02-29T12:00:00Z"),
    ("feb30", "2024-02-30T12:00:00Z"),
    ("apr31", "2025-04-31T00:00:00Z"),
    ("jun31", "2025-06-31T00:00:00Z"),
    ("sep31", "2025-09-31T00:00:00Z"),
    ("nov31", "2025-11-31T00:00:00Z"),
    ("dec31", "2025-12-31T23:59:59Z"),
    ("month_00", "2025-00-11T10:30:00Z"),
    ("month_13", "2025-13-11T10:30:00Z"),
    ("day_00", "2025-01-00T10:30:00Z"),
    ("day_32", "2025-01-32T10:30:00Z"),
    ("year_0000_plus_0100", "0000-01-01T00:00:00+01:00"),
    ("year_0000_minus_0100", "0000-01-01T00:30:00-01:00"),
    ("year_0000_z", "0000-01-01T00:00:00Z"),
    ("year_0000_feb29", "0000-02-29T00:00:00Z"),
    ("year_0001_z", "0001-01-01T00:00:00Z"),
    ("year_9999_minus_2359", "9999-12-31T23:59:59-23:59"),
    ("year_9999_plus_0100", "9999-12-31T23:59:59+01:00"),
    ("year_9999_z_max_fraction", "9999-12-31T23:59:59.999999999Z"),
    ("year_10000", "10000-01-01T00:00:00Z"),
    ("year_negative", "-0001-01-01T00:00:00Z"),
    ("year_1900_lmt_era", "1900-01-01T00:00:00+00:19"),
    ("year_1969", "1969-12-31T23:59:59Z"),
    ("single_digit_month", "2025-1-11T10:30:00Z"),
    ("single_digit_day", "2025-01-1T10:30:00Z"),
    ("single_digit_hour", "2025-01-11T1:30:00Z"),
    ("single_digit_hour_offset", "2025-01-11T9:30:00+05:30"),
    ("single_digit_minute", "2025-01-11T10:3:00Z"),
    ("single_digit_second", "2025-01-11T10:30:0Z"),
    ("three_digit_hour", "2025-01-11T010:30:00Z"),
    ("escaped_u0030_in_timestamp", None),  # filled below (raw JSON)
    ("escaped_solidus_in_timestamp", None),
    ("leading_space", " 2025-01-11T10:30:00Z"),
    ("trailing_space", "2025-01-11T10:30:00Z "),
    ("trailing_newline_escaped", "2025-01-11T10:30:00Z\n"),
    ("fullwidth_digits", "２０２５-01-11T10:30:00Z"),
    ("arabic_indic_digits", "٢٠٢٥-01-11T10:30:00Z"),
    ("comma_fraction", "2025-01-11T10:30:00,5Z"),
    ("comma_fraction_offset", "2025-01-11T10:30:00,987654321-03:30"),
    ("single_digit_hour_fraction_12_offset_2400", "2025-01-11T1:30:00.123456789012+24:00"),
    ("single_digit_hour_comma_fraction", "2025-01-11T9:30:00,5Z"),
    ("hour_24_with_offset", "2025-01-11T24:00:00+01:00"),
    ("hour_00_single_digit_0", "2025-01-11T0:00:00Z"),
    ("trailing_dot", "2025-01-11T10:30:00.Z"),
    ("trailing_dot_offset", "2025-01-11T10:30:00.+01:00"),
    ("fraction_negative_time", "1969-12-31T23:59:59.999999999Z"),
    ("very_long_string", "2025-01-11T10:30:00Z" + "0" * 5000),
    ("very_long_fraction", "2025-01-11T10:30:00." + "9" * 300 + "Z"),
    ("with_weekday", "Sat, 11 Jan 2025 10:30:00 GMT"),
    ("unix_seconds_string", "1736591400"),
    ("empty", ""),
]
for digits in range(1, 13):
    TIMESTAMPS.append(
        (f"fraction_{digits}_digits", "2025-01-11T10:30:00." + "123456789012"[:digits] + "Z")
    )
    TIMESTAMPS.append(
        (
            f"fraction_{digits}_digits_offset",
            "2025-01-11T10:30:00." + "987654321098"[:digits] + "-03:30",
        )
    )
TIMESTAMPS.append(("fraction_all_nines_offset", "2025-12-31T23:59:59.999999999999+00:00"))
TIMESTAMPS.append(("fraction_zeros", "2025-01-11T10:30:00.000000000Z"))
for name, ts in TIMESTAMPS:
    if ts is None:
        continue
    add("timestamp_" + name, event(id="ts-" + name, timestamp=ts))
add(
    "timestamp_escaped_u0030_in_timestamp",
    b'{"id":"ts-esc","timestamp":"2025-01-11T10:30:0\\u0030Z"}',
)
add(
    "timestamp_escaped_solidus_in_timestamp",
    b'{"id":"ts-esc2","timestamp":"2025-01-11T10:30:00Z\\/"}',
)
add("timestamp_escaped_Z", b'{"id":"ts-esc3","timestamp":"2025-01-11T10:30:00\\u005A"}')
add("timestamp_invalid_utf8_inside", b'{"id":"ts-bad","timestamp":"2025-01-11T10:30:00\xffZ"}')
add(
    "timestamp_case_insensitive_key_and_offset_local",
    b'{"id":"x","TIMESTAMP":"2025-01-11T13:30:00+03:00"}',
    tz="Europe/Moscow",
)
add(
    "timestamp_offset_equals_local_kolkata",
    event(id="k", timestamp="2025-01-11T16:00:00.5+05:30"),
    tz="Asia/Kolkata",
)
add(
    "timestamp_zero_offset_in_london_winter",
    event(id="l", timestamp="2025-01-11T10:30:00+00:00"),
    tz="Europe/London",
)
add(
    "timestamp_minus_zero_in_moscow",
    event(id="m", timestamp="2025-01-11T10:30:00-00:00"),
    tz="Europe/Moscow",
)
add(
    "timestamp_ny_offset_in_ny_summer",
    event(id="ny", timestamp="2025-07-11T10:30:00-04:00"),
    tz="America/New_York",
)
add(
    "timestamp_single_digit_hour_offset_local",
    event(id="sdh", timestamp="2025-01-11T9:30:00+03:00"),
    tz="Europe/Moscow",
)

# --- numbers inside data ---------------------------------------------------------
NUMBERS = [
    ("zero", "0"),
    ("neg_zero", "-0"),
    ("neg_zero_float", "-0.0"),
    ("zero_float", "0.0"),
    ("1e-7", "1e-7"),
    ("1e-6", "1e-6"),
    ("0.000001", "0.000001"),
    ("1e-5", "1e-5"),
    ("0.00001", "0.00001"),
    ("0.0001", "0.0001"),
    ("123456", "123456"),
    ("123456.7", "123456.7"),
    ("999999", "999999"),
    ("999999.9", "999999.9"),
    ("1e6", "1e6"),
    ("1000000", "1000000"),
    ("1234567", "1234567"),
    ("123456789", "123456789"),
    ("1e20", "1e20"),
    ("1e21", "1e21"),
    ("1e22", "1e22"),
    ("1e23", "1e23"),
    ("12345678901234567890", "12345678901234567890"),
    ("9007199254740993", "9007199254740993"),
    ("9007199254740992", "9007199254740992"),
    ("5e-324", "5e-324"),
    ("4.9e-324", "4.9e-324"),
    ("2e-324_rounds_to_zero", "2e-324"),
    ("3e-324_rounds_up", "3e-324"),
    ("min_normal", "2.2250738585072014e-308"),
    ("max_subnormal", "2.225073858507201e-308"),
    ("max_double", "1.7976931348623157e308"),
    ("max_double_round_down", "1.7976931348623158e308"),
    ("max_double_overflow", "1.7976931348623159e308"),
    ("1e309_overflow", "1e309"),
    ("neg_1e400_overflow", "-1e400"),
    ("1e-400_underflow", "1e-400"),
    ("neg_1e-400_underflow", "-1e-400"),
    ("0.1", "0.1"),
    ("one_third", "0.3333333333333333"),
    ("two_thirds", "0.6666666666666666"),
    ("1E5", "1E5"),
    ("1e+5", "1e+5"),
    ("1E-5", "1E-5"),
    ("1.0", "1.0"),
    ("100", "100"),
    ("1e2", "1e2"),
    ("1.5", "1.5"),
    ("neg_17", "-17"),
    ("pi", "3.141592653589793"),
    ("e", "2.718281828459045"),
    ("0.1e1", "0.1e1"),
    ("1e0", "1e0"),
    ("1e-0", "1e-0"),
    ("1e00001", "1e00001"),
    ("100000000000000000000000", "100000000000000000000000"),
    ("8.41e21", "8.41e21"),
    ("5e-7", "5e-7"),
    ("neg_1e-7", "-1e-7"),
    ("2.5e-5", "2.5e-5"),
    ("1.5e300", "1.5e300"),
    ("123e-20", "123e-20"),
    ("0.000001234", "0.000001234"),
    ("1e15", "1e15"),
    ("1e16", "1e16"),
    ("1e17", "1e17"),
    ("123456789012345680", "123456789012345680"),
    ("0.30000000000000004", "0.30000000000000004"),
    ("digits_30", "123456789012345678901234567890"),
    ("digits_400", "9" * 400),
    ("digits_400_fraction", "0." + "1" * 400),
    ("digits_310_overflow_int", "1" + "0" * 309),
    ("exp_huge", "1e999999999999"),
    ("exp_huge_negative", "1e-999999999999"),
    ("mantissa_tiny_exp_big", "0.000000001e317"),
    ("halfway_round_even", "9007199254740993.0"),
    ("neg_max", "-1.7976931348623157e308"),
    ("neg_min_subnormal", "-5e-324"),
]
for name, lit in NUMBERS:
    add("number_" + name, event(id="num", data=b'{"n":' + lit.encode() + b"}"))
add(
    "numbers_in_nested_arrays",
    event(id="na", data=b'{"arr":[0,1.25,-3,1e30,[2e-9,-0,1e21]],"m":{"x":1e-7}}'),
)
add(
    "number_as_top_fields_in_data_keys_sorted",
    event(data=b'{"b":1e6,"a":1e-6,"c":100000,"d":1e21,"e":1e20,"f":-0.0,"g":0}'),
)
INVALID_NUMBERS = [
    "01",
    "-01",
    "00",
    "1.",
    "1.e5",
    ".5",
    "+1",
    "-",
    "1e",
    "1e+",
    "1e-",
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "0x10",
    "1_000",
    "1 2",
    "--1",
    "1e5.5",
    "0.1.2",
    "١",
]
for lit in INVALID_NUMBERS:
    add("number_invalid_" + slug(lit), event(id="bad-num", data=b'{"n":' + lit.encode() + b"}"))

# --- data structure -----------------------------------------------------------------
add(
    "data_nested_arrays_objects",
    event(
        id="nest",
        data=b'{"arr":[1,"two",[3,[4]],{"five":5}],"obj":{"z":{"y":{"x":[]}},"empty":{}},'
        b'"list_of_maps":[{"b":1,"a":2}]}',
    ),
)
add(
    "data_null_bool_values",
    event(id="nb", data=b'{"n":null,"t":true,"f":false,"arr":[null,true,false]}'),
)
add(
    "data_empty_containers",
    event(id="ec", data=b'{"m":{},"a":[],"s":"","mm":{"":{}},"aa":[[],{}]}'),
)
add(
    "data_key_ordering",
    event(
        id="keys",
        data={
            "b": 1,
            "a": 2,
            "A": 3,
            "_": 4,
            "é": 5,
            " space": 6,
            "10": 7,
            "9": 8,
            "Z": 9,
            "~": 10,
            "ä": 11,
            "😀": 12,
            "\u00a0": 13,
            "a\u0000": 14,
        },
    ),
)
add(
    "data_keys_colliding_with_logrus",
    event(
        id="c",
        data={
            "msg": "inner",
            "level": "panic",
            "time": "t",
            "fields.msg": "x",
            "logrus_error": "e",
        },
    ),
)
add("data_empty_key", event(data={"": "empty key", " ": "space key"}))
add("data_values_with_map_syntax", event(data={"k": "map[a:b]", "x y": "[1 2]", "c:d": "e f"}))
add("data_string_with_nil_text", event(data={"n": "<nil>", "real": None}))
add("data_1000_keys", event(id="many", data={f"key{i:04d}": i for i in range(1000)}))
add(
    "data_1000_keys_reverse",
    event(id="many-rev", data={f"k{i}": f"v{i}" for i in range(999, -1, -1)}),
)
add("data_array_1000", event(id="arr", data={"a": list(range(1000))}))
add(
    "data_mixed_array_types",
    event(data={"a": [1, "1", True, None, {}, [], 1.5, -0.0, "", {"x": [None]}]}),
)
add("data_deep_arrays_depth_100", event(id="d100", data=b'{"a":' + b"[" * 98 + b"]" * 98 + b"}"))
add("data_deep_objects_depth_100", event(id="o100", data=b'{"a":' * 98 + b"{}" + b"}" * 98))


def deep_arrays(total_depth: int) -> bytes:
    """Event whose deepest point has total_depth open brackets (incl. top level)."""
    inner = total_depth - 2  # top-level object + data object
    return b'{"id":"deep","data":{"a":' + b"[" * inner + b"]" * inner + b"}}"


def deep_objects(total_depth: int) -> bytes:
    inner = total_depth - 2
    return b'{"id":"deep","data":' + b'{"a":' * inner + b"{}" + b"}" * inner + b"}"


for d in (100, 999, 1000, 1001, 9999, 10000, 10001):
    add(f"depth_total_{d}_arrays", deep_arrays(d))
for d in (10000, 10001):
    add(f"depth_total_{d}_objects", deep_objects(d))
add("depth_10001_in_ignored_field", b'{"id":"x","ignored":' + b"[" * 10000 + b"]" * 10000 + b"}")
add("depth_raw_unbalanced_10001_open", b"[" * 10001)
add("depth_top_level_array_10000", b"[" * 10000 + b"]" * 10000)

# --- strings: escapes, unicode, invalid UTF-8 ---------------------------------------
STRINGS = [
    ("ascii_bare", "simple-id_1.2/3@4^5+6"),
    ("empty", ""),
    ("space", "a b"),
    ("all_json_escapes_escaped", None),
    ("quote", 'say "hi"'),
    ("backslash", "C:\\path\\to"),
    ("newline_tab_cr", "line1\nline2\tx\r"),
    ("backspace_formfeed", "bs\bff\f"),
    ("vertical_tab_bell", "\v\a"),
    ("nul", "\x00nul"),
    ("c0_all", "".join(chr(c) for c in range(0x20))),
    ("del", "\x7fdel"),
    ("esc_ansi", "\x1b[31mred\x1b[0m"),
    ("c1_controls", "\x80\x85\x9f"),
    ("u2028_u2029", "a\u2028b\u2029c"),
    ("html", "<script>alert('x')</script> & more"),
    ("nbsp", "a\u00a0b"),
    ("soft_hyphen", "a\u00adb"),
    ("bom", "\ufeffbom"),
    ("zwsp_zwj", "a\u200bb\u200dc"),
    ("bidi", "\u200e\u202eevil\u202c"),
    ("ideographic_space", "a\u3000b"),
    ("unicode_14_melting_face", "\U0001fae0"),
    ("unicode_15_wireless", "\U0001f6dc"),
    ("unicode_15_light_blue_heart", "\U0001fa75"),
    ("unicode_15_1_ids_U+2FFC", "\u2ffc"),
    ("unicode_15_1_cjk_stroke_U+31EF", "\u31ef"),
    ("unicode_U+1F979", "\U0001f979"),
    ("unicode_15_1_cjk_ext_i", "\U0002ebf0"),
    ("unicode_13_chars", "\U0001fad6\U0001f972"),
    ("combining_marks", "e\u0301 a\u0308\u0323"),
    ("combining_alone", "\u0301"),
    ("private_use", "\ue000\uf8ff"),
    ("private_use_plane15", "\U000f0000\U0010fffd"),
    ("unassigned_U+0378", "\u0378"),
    ("replacement_char", "\ufffd"),
    ("noncharacters", "\ufdd0\ufffe\uffff\U0010ffff"),
    ("tag_chars", "\U000e0041\U000e007f"),
    ("variation_selector", "\u2764\ufe0f"),
    ("emoji_zwj_family", "\U0001f468\u200d\U0001f469\u200d\U0001f467"),
    ("emoji_skin_tone", "\U0001f44d\U0001f3fd"),
    ("flag", "\U0001f1fa\U0001f1f8"),
    ("cjk", "用户.登录"),
    ("cjk_ext_b", "\U00020000"),
    ("hangul", "한국어"),
    ("rtl_hebrew_arabic", "שלום مرحبا"),
    ("devanagari", "नमस्ते"),
    ("thai", "สวัสดี"),
    ("cyrillic", "сервис"),
    ("latin1", "Zürich évènement ß"),
    ("greek_final_sigma", "ΟΔΟΣ"),
    ("fullwidth", "ＡＢＣ１２３"),
    ("math_alnum", "\U0001d400\U0001d7ff"),
    ("line_separator_only", "\u2028"),
    ("percent_verbs", "%s %v %d %!"),
    ("equals_colon", "k=v:w"),
    ("map_brackets", "map[a:b]"),
    ("unicode_escapes_text", "\\u0041 literal"),
    ("long_10000", "0123456789abcdef" * 625),
]
for name, s in STRINGS:
    if s is None:
        continue
    add("string_" + name, event(id=s, type=s, source=s, data={"v": s, s: "key"}))
    add(
        "string_ascii_escaped_" + name,
        obj(("id", json.dumps(s, ensure_ascii=True).encode()), ("data", {"v": "x"})),
    )
add(
    "string_all_json_escapes_escaped",
    b'{"id":"\\"\\\\\\/\\b\\f\\n\\r\\t","type":"\\u0022\\u005c\\u002F","data":{"e":"\\b\\f\\n\\r\\t\\/"}}',
)

ESCAPES = [
    ("u_ascii", b"\\u0041\\u0062"),
    ("u_latin", b"\\u00e9\\u00C9"),
    ("u_upper_hex", b"\\u00E9\\u20AC"),
    ("surrogate_pair", b"\\ud83d\\ude00"),
    ("surrogate_pair_upper", b"\\uD83D\\uDE00"),
    ("surrogate_pair_max", b"\\udbff\\udfff"),
    ("lone_high", b"\\ud800"),
    ("lone_high_end_of_string", b"x\\ud83d"),
    ("lone_low", b"\\udc00"),
    ("high_high", b"\\ud800\\ud800"),
    ("high_then_ascii_escape", b"\\ud800\\u0041"),
    ("high_then_raw_char", b"\\ud800A"),
    ("reversed_pair", b"\\ude00\\ud83d"),
    ("high_then_short_escape", b"\\ud800\\n"),
    ("high_high_low", b"\\ud800\\ud83d\\ude00"),
    ("nul_escape", b"\\u0000"),
    ("esc_escape", b"\\u001b[1m"),
    ("del_escape", b"\\u007f"),
    ("u2028_escape", b"\\u2028"),
    ("bom_escape", b"\\ufeff"),
    ("fffd_escape", b"\\ufffd"),
    ("ffff_escape", b"\\uffff"),
    ("solidus", b"a\\/b"),
    ("raw_del_byte", b"\x7f"),
    ("raw_utf8_u2028", "\u2028".encode()),
]
for name, lit in ESCAPES:
    add(
        "escape_" + name,
        b'{"id":"' + lit + b'","type":"t","data":{"k' + lit + b'":"' + lit + b'"}}',
    )
INVALID_ESCAPES = [
    ("short_u", b"\\u12"),
    ("bad_hex", b"\\uZZZZ"),
    ("x_escape", b"\\x41"),
    ("a_escape", b"\\a"),
    ("single_quote_escape", b"\\'"),
    ("backslash_at_end", b"\\"),
    ("uppercase_U", b"\\U0041"),
    ("zero_escape", b"\\0"),
    ("v_escape", b"\\v"),
    ("u_plus", b"\\u+123"),
]
for name, lit in INVALID_ESCAPES:
    add("escape_invalid_" + name, b'{"id":"' + lit + b'","type":"t"}')

INVALID_UTF8 = [
    ("ff", b"\xff"),
    ("fe", b"\xfe"),
    ("c3_28", b"\xc3\x28"),
    ("truncated_e2_82", b"\xe2\x82"),
    ("truncated_e2_82_at_end", b"euro\xe2\x82"),
    ("truncated_f0_9f_98", b"\xf0\x9f\x98"),
    ("lone_lead_c3", b"\xc3"),
    ("overlong_c0_af", b"\xc0\xaf"),
    ("overlong_c1_bf", b"\xc1\xbf"),
    ("overlong_e0_80_af", b"\xe0\x80\xaf"),
    ("overlong_f0_80_80_af", b"\xf0\x80\x80\xaf"),
    ("surrogate_ed_a0_80", b"\xed\xa0\x80"),
    ("surrogate_pair_cesu", b"\xed\xa0\xbd\xed\xb8\x80"),
    ("above_max_f4_90", b"\xf4\x90\x80\x80"),
    ("f5_lead", b"\xf5\x80\x80\x80"),
    ("five_byte_f8", b"\xf8\x88\x80\x80\x80"),
    ("stray_continuation_80", b"\x80"),
    ("stray_continuation_bf_bf", b"\xbf\xbf"),
    ("mixed_valid_invalid", b"ok\xff" + "€".encode() + b"\xe2\x82x" + "😀".encode() + b"\xf0\x9f"),
    ("valid_then_truncated", "é".encode() + b"\xe2\x82" + "ü".encode()),
    ("encoded_fffd_then_ff", "\ufffd".encode() + b"\xff"),
]
for name, bad in INVALID_UTF8:
    add(
        "utf8_in_json_" + name,
        b'{"id":"a' + bad + b'b","type":"t","data":{"k' + bad + b'":"v' + bad + b'"}}',
    )
    add("utf8_raw_" + name, b"raw " + bad + b" payload")
add("utf8_raw_only_invalid", b"\xff\xfe\xfd")
add("utf8_raw_latin1_text", "Zürich café".encode("latin-1"))
add("utf8_raw_utf16le", "hi".encode("utf-16-le"))
add("utf8_raw_utf16_bom", "{}".encode("utf-16"))

CONTROL_RAW = [
    ("nul", b"\x00"),
    ("lf", b"\n"),
    ("cr", b"\r"),
    ("tab", b"\t"),
    ("esc", b"\x1b"),
    ("unit_sep_1f", b"\x1f"),
    ("del_ok", b"\x7f"),
]
for name, c in CONTROL_RAW:
    add("control_raw_in_json_string_" + name, b'{"id":"a' + c + b'b","type":"t"}')
    add("control_raw_payload_" + name, b"before" + c + b"after")
add("raw_ansi_sequences", b"\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J")
add("raw_html_and_quotes", b'<tag attr="v">a & b</tag>')
add("raw_newlines_tabs", b"line one\nline two\ttabbed\r\n")
add("raw_u2028_u2029", "a\u2028b\u2029c".encode())
add("raw_bom_nbsp", "\ufeffx\u00a0y".encode())
add("raw_unicode_15_1", "\u2ffc\u31ef\U0001fae0\U0001f6dc\U0001fa75\U0001f979".encode())
add("raw_backspace_formfeed", b"back\x08space form\x0cfeed")
add("raw_very_long", ("The quick brown fox jumps over the lazy dog. " * 120).encode())
add("raw_bare_chars_only", b"abc-._/@^+XYZ019")
add("raw_single_equals", b"=")
add("raw_percent_verbs", b"%s %d %v %!(EXTRA)")

# text-layout quoting: one ASCII punctuation / space character per case
for c in " !\"#$%&'()*,:;<=>?[\\]`{|}~-._/@^+":
    add(f"text_quoting_char_{ord(c):02x}", event(id=f"a{c}b", type=c, source=f"{c}", data={}))

# --- replies / metadata ---------------------------------------------------------------
REPLIES = [
    ("empty", ""),
    ("non_js_inbox", "_INBOX.x"),
    ("non_js_inbox_long", "_INBOX.abc123.def456"),
    ("v1", js_reply()),
    ("v1_8_tokens", "$JS.ACK.EVENTS.dur.1.2.3.4"),
    ("v1_10_tokens_invalid", js_reply() + ".extra"),
    ("v2_11_tokens", js_reply_v2(extra=())),
    ("v2_12_tokens", js_reply_v2()),
    ("v2_13_tokens", js_reply_v2(extra=("RND", "MORE"))),
    ("v2_20_tokens", js_reply_v2(extra=tuple("abcdefghi"))),
    ("v2_domain_underscore", js_reply_v2(domain="_")),
    ("v2_domain_empty", js_reply_v2(domain="")),
    ("v1_non_numeric", js_reply(delivered="x", sseq="y", cseq="z", ts="notanumber", pending="w")),
    ("v1_empty_numbers", js_reply(delivered="", sseq="", cseq="", ts="", pending="")),
    ("v1_all_empty_tokens", "$JS.ACK......."),
    ("v1_empty_stream_consumer", js_reply(stream="", consumer="")),
    ("v1_negative_looking", js_reply(delivered="-5", sseq="-1", ts="-1000", pending="-0")),
    ("v1_plus_sign", js_reply(delivered="+5", sseq="+1")),
    ("v1_spaces_in_numbers", js_reply(delivered=" 5", sseq="1 ")),
    ("v1_unicode_digits", js_reply(delivered="١٢", sseq="５")),
    ("v1_leading_zeros", js_reply(delivered="007", sseq="0000000042", ts="0001736591399987654321")),
    ("v1_zero_all", js_reply(delivered="0", sseq="0", cseq="0", ts="0", pending="0")),
    (
        "v1_int64_max",
        js_reply(
            delivered=str(INT64_MAX), sseq=str(INT64_MAX), ts=str(INT64_MAX), pending=str(INT64_MAX)
        ),
    ),
    (
        "v1_int64_max_plus_1_wraps",
        js_reply(delivered=str(2**63), sseq=str(2**63), ts=str(2**63), pending=str(2**63)),
    ),
    (
        "v1_uint64_max",
        js_reply(
            delivered=str(2**64 - 1), sseq=str(2**64 - 1), ts=str(2**64 - 1), pending=str(2**64 - 1)
        ),
    ),
    (
        "v1_20_digit_overflow",
        js_reply(
            sseq="18446744073709551616",
            delivered="99999999999999999999",
            ts="12345678901234567890",
            pending="10000000000000000000",
        ),
    ),
    ("v1_30_digit", js_reply(sseq="1" * 30, delivered="9" * 30, ts="1" * 30, pending="2" * 30)),
    ("v1_ts_1_ns", js_reply(ts="1")),
    ("v1_ts_999999999_ns", js_reply(ts="999999999")),
    ("v1_ts_before_1970_via_wrap", js_reply(ts=u64_token(-1))),
    ("v1_ts_1900_via_wrap", js_reply(ts=u64_token(-2208988800 * 10**9))),
    ("v1_ts_int64_min_via_wrap", js_reply(ts=u64_token(INT64_MIN))),
    ("v1_ts_near_int64_max", js_reply(ts=str(INT64_MAX - 10**9))),
    ("v1_ts_year_2038", js_reply(ts=str(2**31 * 10**9))),
    ("lowercase_js_ack", js_reply().replace("$JS.ACK", "$js.ack")),
    ("js_without_dollar", js_reply().replace("$JS", "JS")),
    ("js_nak_prefix", js_reply().replace("ACK", "NAK")),
    ("js_api_reply", "$JS.API.CONSUMER.MSG.NEXT.EVENTS.dur"),
    ("v1_stream_with_spaces_quotes", js_reply(stream='my "stream" x', consumer="c=1 d")),
    ("v1_stream_unicode", js_reply(stream="поток", consumer="потребитель😀")),
    ("v1_stream_bare_chars", js_reply(stream="S-1_2/3@4^5+6", consumer="C")),
    ("v1_consumer_with_newline", js_reply(consumer="a\nb")),
    ("v1_trailing_dot_is_10_tokens", js_reply() + "."),
    ("v1_leading_dot", "." + js_reply()),
    ("reply_with_spaces", "reply with spaces"),
    ("reply_unicode_quotes", 'r\u00e9ply "q" \\'),
    (
        "v1_huge_pending_delivered_uint64_cast",
        js_reply(delivered=str(2**63 + 5), pending=str(2**64 - 2)),
    ),
]
for name, reply in REPLIES:
    add("reply_" + name, BASIC, reply=reply)
add("reply_v1_raw_payload", b"plain", reply=js_reply(ts="0"))
add("reply_v2_raw_payload", b"plain", reply=js_reply_v2(domain="_"))

# --- subjects -----------------------------------------------------------------
SUBJECTS = [
    ("with_spaces", "events with spaces"),
    ("unicode", "events.üñí.用户"),
    ("quotes", "events.\"quoted\".'single'"),
    ("backslash", "events\\x"),
    ("empty", ""),
    ("wildcards", "events.*.>"),
    ("equals", "events=x"),
    ("newline_tab", "events\nx\ty"),
    ("control", "ev\x00\x1b"),
    ("bare_chars", "events.a-b_c/d@e^f+g"),
    ("u2028", "a\u2028b"),
    ("unicode_15_1", "ev\u2ffc\u31ef"),
    ("emoji", "events.\U0001fae0"),
    ("nbsp", "a\u00a0b"),
    ("long", "events." + "x" * 2000),
]
for name, subject in SUBJECTS:
    add("subject_" + name, BASIC, subject=subject)
add("subject_unicode_raw_payload", "ünïcode raw", subject="événements.ß")

# --- time zones / entry time -------------------------------------------------------
TZ_CASES = [
    ("utc", "UTC", NOW),
    ("europe_moscow", "Europe/Moscow", NOW),
    ("new_york_standard", "America/New_York", NOW),
    ("new_york_dst", "America/New_York", 1752244200999999999),
    ("new_york_dst_start_gap", "America/New_York", 1741503600000000000),
    ("new_york_dst_end_overlap", "America/New_York", 1762062000500000000),
    ("kolkata", "Asia/Kolkata", NOW),
    ("kathmandu", "Asia/Kathmandu", NOW),
    ("lord_howe_summer", "Australia/Lord_Howe", NOW),
    ("lord_howe_winter", "Australia/Lord_Howe", 1752244200000000000),
    ("chatham_summer", "Pacific/Chatham", NOW),
    ("chatham_winter", "Pacific/Chatham", 1752244200000000000),
    ("st_johns_winter", "America/St_Johns", NOW),
    ("st_johns_summer", "America/St_Johns", 1752244200000000000),
    ("amsterdam_1900_lmt", "Europe/Amsterdam", -2208988800 * 10**9 + 123456789),
    ("amsterdam_1920_amt", "Europe/Amsterdam", -1577923200 * 10**9),
    ("amsterdam_1938_plus_0020", "Europe/Amsterdam", -1009843200 * 10**9 + 999999999),
    ("kiritimati", "Pacific/Kiritimati", NOW),
    ("kiritimati_1994_old_offset", "Pacific/Kiritimati", 757382400 * 10**9),
    ("honolulu", "Pacific/Honolulu", NOW),
    ("los_angeles", "America/Los_Angeles", NOW),
    ("tokyo", "Asia/Tokyo", NOW),
    ("london_summer", "Europe/London", 1752244200000000000),
    ("etc_gmt_plus_12", "Etc/GMT+12", NOW),
    ("fraction_999999999_truncates", "UTC", 1736591400999999999),
    ("fraction_000999999", "UTC", 1736591400000999999),
    ("epoch_zero", "UTC", 0),
    ("negative_one_ns", "UTC", -1),
    ("negative_now", "UTC", -1234567890123456789),
    ("negative_now_moscow", "Europe/Moscow", -1234567890123456789),
    ("int64_min", "UTC", INT64_MIN),
    ("int64_max", "UTC", INT64_MAX),
    ("int64_max_kiritimati", "Pacific/Kiritimati", INT64_MAX),
    ("int64_min_amsterdam", "Europe/Amsterdam", INT64_MIN),
    ("year_2038", "UTC", 2**31 * 10**9),
    ("year_2100_new_york", "America/New_York", 4102444800 * 10**9 + 1),
]
for name, tz, now in TZ_CASES:
    add("tz_" + name, BASIC, tz=tz, now=now)
    add("tz_" + name + "_js_ts_same", b"raw", tz=tz, now=now, reply=js_reply(ts=u64_token(now)))
add(
    "tz_amsterdam_1900_event_offset",
    event(timestamp="1900-01-01T00:19:32+00:19"),
    tz="Europe/Amsterdam",
    now=-2208988800 * 10**9,
)
add(
    "tz_event_offset_same_as_local_new_york",
    event(timestamp="2025-01-11T05:30:00-05:00"),
    tz="America/New_York",
)

N_HAND = len(cases)


# ===========================================================================
# Seeded random cases
# ===========================================================================

rng = random.Random(SEED)

TZ_POOL = [
    "UTC",
    "UTC",
    "UTC",
    "Europe/Moscow",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Europe/Amsterdam",
    "Pacific/Kiritimati",
    "Europe/London",
    "America/Sao_Paulo",
    "Africa/Casablanca",
    "Asia/Tehran",
    "Australia/Adelaide",
    "Pacific/Apia",
]

TRICKY_CHARS = list("aZ0-._/@^+ =\"\\'`{}[]:,%#~|<>&!?*;()$") + [
    "\n",
    "\t",
    "\r",
    "\x00",
    "\x01",
    "\x07",
    "\x08",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x80",
    "\x85",
    "\x9f",
    "\xa0",
    "\xad",
    "é",
    "ß",
    "ü",
    "ı",
    "ſ",
    "\u212a",
    "İ",
    "ﬀ",
    "Ω",
    "\u2028",
    "\u2029",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u202e",
    "\u2060",
    "\u3000",
    "\ufeff",
    "\ufffd",
    "\ufffe",
    "\uffff",
    "\ue000",
    "\U000f0000",
    "\U0010ffff",
    "\u0378",
    "\u0301",
    "\u20ac",
    "😀",
    "\U0001fae0",
    "\U0001f6dc",
    "\U0001fa75",
    "\u2ffc",
    "\u31ef",
    "\U0001f979",
    "\U0001f1fa\U0001f1f8",
    "\U0001f44d\U0001f3fd",
    "中",
    "한",
    "ע",
    "ب",
    "\U00020000",
    "\U0002ebf0",
    "\U000e0041",
    "%v",
    "map[",
    "<nil>",
    "\\u0041",
]
WORDS = [
    "event",
    "user",
    "login",
    "order",
    "id",
    "type",
    "data",
    "source",
    "timestamp",
    "x",
    "k",
    "value",
    "null",
    "true",
    "1",
    "1e6",
    "ok",
    "user_id",
    "action",
    "évènement",
    "用户",
]
INVALID_BYTES = [
    b"\xff",
    b"\xfe",
    b"\xc0\xaf",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xbf",
    b"\xf0\x9f\x98",
    b"\xc3",
    b"\xf8\x88\x80\x80\x80",
    b"\xe0\x80\xaf",
]
ODD_ESCAPES = [
    b"\\ud800",
    b"\\udc00",
    b"\\udbff\\udfff",
    b"\\ude00\\ud83d",
    b"\\ud800\\u0041",
    b"\\u0000",
    b"\\/",
    b"\\uFFFD",
    b"\\ud83d\\ude00",
    b"\\u001b",
]
FLOAT_POOL = [
    "0",
    "-0",
    "0.0",
    "-0.0",
    "1",
    "-1",
    "1e-7",
    "1e-6",
    "0.000001",
    "1e-5",
    "0.0001",
    "123456",
    "1e6",
    "1234567",
    "123456789",
    "1e20",
    "1e21",
    "1e22",
    "12345678901234567890",
    "5e-324",
    "2.2250738585072014e-308",
    "1.7976931348623157e308",
    "0.1",
    "0.3333333333333333",
    "1E5",
    "1e+5",
    "1.0",
    "100",
    "9007199254740993",
    "1e-400",
    "123456.7",
    "999999.9999",
    "1e15",
    "1e16",
    "2.5e-5",
    "123456789012345678901234567890",
    "0.30000000000000004",
    "4.35",
    "1e100",
    "-1e-100",
]
BAD_NUMBERS = ["01", "1.", ".5", "+1", "-", "1e", "NaN", "Infinity", "1e309", "-1e400", "0x1"]


def ws() -> bytes:
    r = rng.random()
    if r < 0.85:
        return b""
    return bytes(rng.choice(b" \t\n\r") for _ in range(rng.randint(1, 3)))


def rand_text(max_len=12) -> list:
    """A random string as a list of atoms: ("s", str) | ("b", raw bytes) | ("e", escape text)."""
    atoms = []
    for _ in range(rng.randint(0, max_len)):
        r = rng.random()
        if r < 0.45:
            atoms.append(("s", rng.choice("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.")))
        elif r < 0.55:
            atoms.append(("s", rng.choice(WORDS)))
        else:
            atoms.append(("s", rng.choice(TRICKY_CHARS)))
    return atoms


SHORT_ESC = {
    '"': b'\\"',
    "\\": b"\\\\",
    "\b": b"\\b",
    "\f": b"\\f",
    "\n": b"\\n",
    "\r": b"\\r",
    "\t": b"\\t",
}


def u_escape(cp: int) -> bytes:
    fmt = "\\u%04x" if rng.random() < 0.6 else "\\u%04X"
    if cp > 0xFFFF:
        cp -= 0x10000
        return (fmt % (0xD800 + (cp >> 10)) + fmt % (0xDC00 + (cp & 0x3FF))).encode()
    return (fmt % cp).encode()


def jstring(atoms: list, chaos: int) -> bytes:
    """Encode atoms as a JSON string literal. chaos 0: plain valid JSON;
    1: random \\u escapes, invalid UTF-8 bytes, lone surrogates (still valid
    JSON syntax); 2: may also contain raw control characters / bad escapes."""
    out = bytearray(b'"')
    p_esc = 0.0 if chaos == 0 else 0.25
    if chaos >= 1:
        atoms = list(atoms)
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            extra = (
                ("b", rng.choice(INVALID_BYTES))
                if rng.random() < 0.6
                else ("e", rng.choice(ODD_ESCAPES))
            )
            atoms.insert(rng.randint(0, len(atoms)), extra)
    for kind, val in atoms:
        if kind == "s":
            for ch in val:
                cp = ord(ch)
                if ch in SHORT_ESC or cp < 0x20:
                    if chaos >= 2 and cp < 0x20 and rng.random() < 0.3:
                        out += ch.encode()  # raw control character: invalid JSON
                    elif ch in SHORT_ESC and rng.random() < 0.7:
                        out += SHORT_ESC[ch]
                    else:
                        out += u_escape(cp)
                elif ch == "/" and chaos and rng.random() < 0.5:
                    out += b"\\/"
                elif rng.random() < p_esc:
                    out += u_escape(cp)
                else:
                    out += ch.encode()
        else:  # "b": raw (possibly invalid UTF-8) bytes, "e": escape text
            out += val
    if chaos >= 2 and rng.random() < 0.15:
        out += rng.choice([b"\\x41", b"\\u12", b"\\", b"\\a"])
    out += b'"'
    return bytes(out)


def rand_number(chaos: int) -> bytes:
    r = rng.random()
    if chaos >= 2 and r < 0.08:
        return rng.choice(BAD_NUMBERS).encode()
    if r < 0.35:
        return rng.choice(FLOAT_POOL).encode()
    if r < 0.6:
        while True:
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if x == x and x not in (float("inf"), float("-inf")):
                break
        form = rng.random()
        if form < 0.7:
            return repr(x).encode()
        if form < 0.85:
            return f"{x:.17g}".replace("inf", "1e308").encode()
        return f"{x:.25e}".upper().encode()
    if r < 0.8:
        return str(rng.randint(-(10 ** rng.randint(1, 25)), 10 ** rng.randint(1, 25))).encode()
    if r < 0.9:
        mant = rng.randint(1, 10 ** rng.randint(1, 17))
        exp = rng.randint(-330, 310)
        sign = rng.choice(["", "-"])
        e = rng.choice(["e", "E"])
        esign = rng.choice(["", "+"]) if exp >= 0 else ""
        return f"{sign}{mant}{e}{esign}{exp}".encode()
    digits = rng.randint(1, 17)
    v = rng.randint(0, 10**digits)
    scale = rng.randint(0, 25)
    s = str(v).rjust(scale + 1, "0")
    return (
        rng.choice(["", "-"]) + s[: len(s) - scale] + ("." + s[len(s) - scale :] if scale else "")
    ).encode()


def rand_value(depth: int, chaos: int) -> bytes:
    r = rng.random()
    leaf = depth >= rng.randint(2, 5)
    if r < 0.35 or (leaf and r < 0.6):
        return jstring(rand_text(), chaos)
    if r < 0.6 or (leaf and r < 0.85):
        return rand_number(chaos)
    if r < 0.68 or leaf:
        return rng.choice([b"true", b"false", b"null"])
    if r < 0.85:
        return rand_map(depth + 1, chaos)
    n = rng.randint(0, 5)
    return (
        b"["
        + ws()
        + (b"," + ws()).join(rand_value(depth + 1, chaos) for _ in range(n))
        + ws()
        + b"]"
    )


def rand_key(chaos: int) -> bytes:
    r = rng.random()
    if r < 0.5:
        return jstring([("s", rng.choice(WORDS))], chaos)
    if r < 0.55:
        return b'""'
    return jstring(rand_text(6), chaos)


def rand_map(depth: int, chaos: int, max_keys: int = 5) -> bytes:
    keys = [rand_key(chaos) for _ in range(rng.randint(0, max_keys))]
    if keys and rng.random() < 0.1:
        keys.append(rng.choice(keys))  # duplicate key
    items = [ws() + k + ws() + b":" + ws() + rand_value(depth, chaos) + ws() for k in keys]
    return b"{" + ws() + b",".join(items) + b"}"


def days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def rand_timestamp(chaos: int) -> bytes:
    year = rng.choice(
        [
            rng.randint(1970, 2038),
            rng.randint(1970, 2038),
            rng.randint(0, 9999),
            0,
            9999,
            2000,
            2024,
            1900,
        ]
    )
    month = rng.randint(1, 12)
    day = rng.randint(1, days_in(year, month))
    h, m, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    frac = (
        ""
        if rng.random() < 0.5
        else "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
    )
    zr = rng.random()
    if zr < 0.4:
        zone = "Z"
    elif zr < 0.5:
        zone = rng.choice(["+00:00", "-00:00", "+05:30", "-07:00", "+03:00", "-05:00", "+05:45"])
    else:
        zone = "{}{:02d}:{:02d}".format(
            rng.choice("+-"),
            rng.randint(0, 23),
            rng.choice([0, 0, 30, 45, rng.randint(0, 59)]),
        )
    sep, sec = "T", f"{s:02d}"
    hour = f"{h:02d}"
    if chaos >= 1 and rng.random() < 0.3:
        k = rng.randint(0, 9)
        if k == 0:
            day = rng.choice([29, 30, 31])
        elif k == 1:
            hour = "24"
        elif k == 2:
            sec = "60"
        elif k == 3:
            sep = rng.choice(["t", " "])
        elif k == 4:
            zone = zone.lower() if zone == "Z" else "z"
        elif k == 5:
            hour = str(h)
        elif k == 6:
            zone = "{}{:02d}:{:02d}".format(
                rng.choice("+-"), rng.choice([24, 25, 99]), rng.randint(0, 99)
            )
        elif k == 7:
            frac = rng.choice([".", ",5", ",123"])
        elif k == 8:
            zone = ""
        else:
            frac += "0" * rng.randint(10, 40)
    text = f"{year:04d}-{month:02d}-{day:02d}{sep}{hour}:{m:02d}:{sec}{frac}{zone}"
    return b'"' + text.encode() + b'"'


def spell(field: str, chaos: int) -> bytes:
    r = rng.random()
    if r < 0.75:
        name = field
    elif r < 0.9:
        name = "".join(c.upper() if rng.random() < 0.5 else c for c in field)
    elif r < 0.95 and chaos:
        name = field.replace("s", "ſ").replace("i", "ı")
    else:
        name = field.upper()
    if chaos and rng.random() < 0.1:
        return (
            b'"'
            + b"".join(u_escape(ord(c)) if rng.random() < 0.5 else c.encode() for c in name)
            + b'"'
        )
    return json.dumps(name, ensure_ascii=False).encode()


def rand_event(chaos: int, *, allow_wrong_types: bool = True) -> bytes:
    members = []
    for field in ["id", "type", "source", "timestamp", "data"]:
        if rng.random() < 0.08:
            continue
        r = rng.random()
        if field == "timestamp":
            if r < 0.88:
                val = rand_timestamp(chaos)
            elif r < 0.94:
                val = b"null"
            else:
                val = (
                    rng.choice([b"1736591400", b'""', b"{}", b"[]", b"true"])
                    if allow_wrong_types
                    else b"null"
                )
        elif field == "data":
            if r < 0.86:
                val = rand_map(1, chaos, max_keys=7)
            elif r < 0.92:
                val = b"null"
            elif r < 0.95:
                val = b"{}"
            else:
                val = (
                    rng.choice([b"[]", b"[1]", b'"s"', b"1", b"true"])
                    if allow_wrong_types
                    else b"{}"
                )
        else:
            if r < 0.93:
                val = jstring(rand_text(16), chaos)
            elif r < 0.96:
                val = b"null"
            else:
                val = (
                    rng.choice([b"1", b"true", b"{}", b"[]", b"1.5"])
                    if allow_wrong_types
                    else b'""'
                )
        members.append([spell(field, chaos), val])
    if rng.random() < 0.15:
        members.append([rand_key(chaos), rand_value(1, chaos)])  # unknown field
    if members and rng.random() < 0.1:
        k, _ = rng.choice(members)
        members.append([k, rand_value(1, chaos) if rng.random() < 0.3 else b"null"])  # duplicate
    if rng.random() < 0.3:
        rng.shuffle(members)
    body = b",".join(ws() + k + ws() + b":" + ws() + v + ws() for k, v in members)
    return ws() + b"{" + body + b"}" + ws()


def rand_reply() -> str:
    r = rng.random()

    def num() -> str:
        return str(
            rng.choice([rng.randint(0, 10), rng.randint(0, 10**6), rng.randint(0, 2**63 - 1)])
        )

    def ts() -> str:
        if rng.random() < 0.1:
            return str(rng.randint(0, 2**63 - 1))
        return str(rng.randint(15 * 10**17, 19 * 10**17))

    if r < 0.45:
        return js_reply(delivered=num(), sseq=num(), cseq=num(), ts=ts(), pending=num())
    if r < 0.6:
        return js_reply_v2(
            domain=rng.choice(["_", "hub", "", "leaf-1"]),
            delivered=num(),
            sseq=num(),
            ts=ts(),
            pending=num(),
            extra=rng.choice([(), ("R",), ("R", "S")]),
        )
    if r < 0.75:
        return ""
    if r < 0.85:
        return "_INBOX." + "".join(rng.choice("abcdef0123456789") for _ in range(22))
    toks = [
        rng.choice(["", "x", "-1", "+1", "18446744073709551616", "9" * 25, "é", "0", "007"])
        for _ in range(7)
    ]
    return js_reply(*toks[:5], stream=toks[5] or "S", consumer=toks[6] or "C")


def rand_subject() -> str:
    if rng.random() < 0.85:
        return "events." + ".".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
    s = "".join(val for _, val in rand_text(10))
    return s


def rand_now() -> int:
    r = rng.random()
    if r < 0.8:
        return rng.randint(1_500_000_000, 1_900_000_000) * 10**9 + rng.randint(0, 10**9 - 1)
    if r < 0.9:
        return rng.randint(-3_000_000_000, 0) * 10**9 + rng.randint(0, 10**9 - 1)
    return rng.randint(INT64_MIN, INT64_MAX)


def envelope() -> dict:
    """Random subject / reply / now / tz: mostly the defaults."""
    if rng.random() < 0.6:
        return {"tz": rng.choice(TZ_POOL), "now": rand_now(), "reply": rand_reply()}
    return {}


for i in range(N_RANDOM_EVENTS):
    chaos = rng.choices([0, 1, 2], weights=[60, 30, 10])[0]
    add(f"rand_event_{i:04d}_c{chaos}", rand_event(chaos), **envelope())

SIGNIFICANT = b'{}[]":,\\ ntfue.0123456789-+' + b"\x00\x1f\x7f\x80\xc3\xe2\xff"
for i in range(N_MUTATIONS):
    base = bytearray(rand_event(0, allow_wrong_types=False) if rng.random() < 0.85 else BASIC)
    ops = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["flip", "replace", "insert", "delete", "dup", "truncate"])
        if not base:
            break
        pos = rng.randrange(len(base))
        if op == "flip":
            base[pos] ^= 1 << rng.randrange(8)
        elif op == "replace":
            base[pos] = rng.choice(SIGNIFICANT)
        elif op == "insert":
            base[pos:pos] = bytes(
                [rng.choice(SIGNIFICANT) if rng.random() < 0.7 else rng.randrange(256)]
            )
        elif op == "delete":
            del base[pos : pos + rng.randint(1, 4)]
        elif op == "dup":
            base[pos:pos] = base[pos : pos + rng.randint(1, 8)]
        else:
            del base[pos:]
        ops.append(op)
    add(f"rand_mutation_{i:04d}_{'_'.join(ops)}", bytes(base), **envelope())

for i in range(N_RANDOM_BYTES):
    mode = rng.choice(["bytes", "ascii", "utf8_mix", "jsonish"])
    n = rng.randint(0, 80)
    if mode == "bytes":
        data = bytes(rng.randrange(256) for _ in range(n))
    elif mode == "ascii":
        data = bytes(rng.randrange(0x20, 0x7F) for _ in range(n))
    elif mode == "utf8_mix":
        parts = []
        for _ in range(n // 2):
            parts.append(
                rng.choice(INVALID_BYTES)
                if rng.random() < 0.2
                else rng.choice(TRICKY_CHARS).encode()
            )
        data = b"".join(parts)
    else:
        data = bytes(rng.choice(SIGNIFICANT) for _ in range(n))
    add(f"rand_bytes_{i:04d}_{mode}", data, **envelope())

for i in range(N_RANDOM_ENVELOPES):
    payload = BASIC if rng.random() < 0.5 else rand_event(0)
    add(
        f"rand_envelope_{i:04d}",
        payload,
        subject=rand_subject(),
        reply=rand_reply(),
        now=rand_now(),
        tz=rng.choice(TZ_POOL),
    )


def main(argv: list[str]) -> int:
    out = (
        argv[1]
        if len(argv) > 1
        else os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.jsonl")
    )
    # ensure_ascii: the file is pure ASCII, so no reader can split a line at
    # U+2028 / U+0085 and no encoding question arises.
    text = "".join(json.dumps(c, ensure_ascii=True) + "\n" for c in cases)
    if out == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="ascii", newline="\n") as f:
            f.write(text)
    print(
        f"make_cases.py: {len(cases)} cases ({N_HAND} hand-picked, {len(cases) - N_HAND} random)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
