//! Property tests of the two parsers that read what the sidecar writes: the handshake line on stdout
//! and the log lines on stderr. Both read bytes from another process, so neither may panic on any
//! input, and both must keep their promises for every valid input, not just the examples.
//!
//! `PROPTEST_CASES` raises the number of cases (`npm run fuzz` runs many more).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tauri_plugin_anysync::{parse_handshake, parse_log_line, LogLevel, PROTOCOL_VERSION};

/// Arbitrary JSON values, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object written with its keys in the given order (serde_json's map would sort them).
fn object_line(fields: &[(String, Value)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn loopback_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|[a, b, c]| IpAddr::V4(Ipv4Addr::new(127, a, b, c))),
        Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]
}

fn non_loopback_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        // Loopback in disguise is still not what the plugin dials.
        Just(IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped())),
        Just(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Just(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    ]
    .prop_filter("not loopback", |ip| !ip.is_loopback())
}

/// Keys the handshake does not know, which it must ignore (forward compatibility).
fn extra_fields() -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(
        (
            "[a-zA-Z_]{1,12}".prop_filter("not a handshake key", |k| {
                !["anysync", "protocolVersion", "addr", "pid", "version"].contains(&k.as_str())
            }),
            json_value(),
        ),
        0..3,
    )
}

/// A valid handshake's fields, shuffled, with unknown extras and a line ending.
fn handshake_line(
    addr: SocketAddr,
    pid: u32,
    version: &str,
    extras: Vec<(String, Value)>,
    order: &[usize],
    ending: &str,
) -> String {
    let mut fields = vec![
        ("anysync".to_owned(), json!("ready")),
        ("protocolVersion".to_owned(), json!(PROTOCOL_VERSION)),
        ("addr".to_owned(), json!(addr.to_string())),
        ("pid".to_owned(), json!(pid)),
        ("version".to_owned(), json!(version)),
    ];
    fields.extend(extras);
    let shuffled: Vec<(String, Value)> = order
        .iter()
        .map(|&i| fields[i % fields.len()].clone())
        .chain(fields.iter().cloned())
        .collect();
    // Keep each key once, at its first position in the shuffled order (a repeated key is a
    // different test).
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<(String, Value)> = shuffled
        .into_iter()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    format!("{}{ending}", object_line(&fields))
}

/// What the parser itself makes of `value` written as JSON text: serde_json reads some floats back
/// one ulp off (without its `float_roundtrip` feature), and that is not the property under test.
fn reparsed(value: &Value) -> Value {
    serde_json::from_str(&value.to_string()).expect("JSON")
}

proptest! {
    // Failures are kept as plain regression tests at the end of this file, not in a side file.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn handshake_parser_never_panics_on_any_text(line in any::<String>()) {
        let _ = parse_handshake(&line);
    }

    #[test]
    fn handshake_parser_never_panics_on_handshake_shaped_json(
        fields in prop::collection::vec(
            (
                prop_oneof![
                    Just("anysync".to_owned()),
                    Just("protocolVersion".to_owned()),
                    Just("addr".to_owned()),
                    Just("pid".to_owned()),
                    Just("version".to_owned()),
                    any::<String>(),
                ],
                prop_oneof![
                    json_value(),
                    Just(json!("ready")),
                    Just(json!(1)),
                    any::<String>().prop_map(Value::String),
                    (any::<IpAddr>(), any::<u16>())
                        .prop_map(|(ip, port)| json!(SocketAddr::new(ip, port).to_string())),
                ],
            ),
            0..8,
        ),
    ) {
        let line = object_line(&fields);
        if let Err(error) = parse_handshake(&line) {
            // Every rejection is one of the two start-up codes, and its message quotes the line
            // bounded (at most 200 characters and the ellipsis, plus the fixed text).
            prop_assert!(
                ["HANDSHAKE_INVALID", "INCOMPATIBLE_BACKEND"].contains(&error.code()),
                "{error}"
            );
            prop_assert!(error.to_string().chars().count() < 200 + 1_000 + 300, "{error}");
        }
    }

    #[test]
    fn valid_handshakes_round_trip(
        ip in loopback_ip(),
        port in 1u16..,
        pid in any::<u32>(),
        version in any::<String>(),
        extras in extra_fields(),
        order in prop::collection::vec(any::<usize>(), 0..8),
        ending in prop_oneof![Just(""), Just("\n"), Just("\r\n"), Just(" \t\n")],
    ) {
        let addr = SocketAddr::new(ip, port);
        let line = handshake_line(addr, pid, &version, extras, &order, ending);
        let handshake = parse_handshake(&line)
            .map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
        prop_assert_eq!(handshake.addr, addr);
        prop_assert_eq!(handshake.pid, pid);
        prop_assert_eq!(handshake.version, version);
    }

    #[test]
    fn non_loopback_addresses_are_always_rejected(
        ip in non_loopback_ip(),
        port in any::<u16>(),
        pid in any::<u32>(),
        extras in extra_fields(),
        order in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let line = handshake_line(SocketAddr::new(ip, port), pid, "0.1.0", extras, &order, "\n");
        let error = parse_handshake(&line).expect_err("a non-loopback address must be refused");
        prop_assert_eq!(error.code(), "HANDSHAKE_INVALID", "{}", error);
    }

    #[test]
    fn port_zero_is_always_rejected(ip in loopback_ip(), pid in any::<u32>()) {
        let line = handshake_line(SocketAddr::new(ip, 0), pid, "0.1.0", vec![], &[], "");
        let error = parse_handshake(&line).expect_err("port 0 is not a listening port");
        prop_assert_eq!(error.code(), "HANDSHAKE_INVALID", "{}", error);
    }

    #[test]
    fn other_protocol_versions_are_incompatible(
        version in any::<u32>().prop_filter("not ours", |v| *v != PROTOCOL_VERSION),
        ip in loopback_ip(),
        port in 1u16..,
    ) {
        let line = object_line(&[
            ("anysync".into(), json!("ready")),
            ("protocolVersion".into(), json!(version)),
            ("addr".into(), json!(SocketAddr::new(ip, port).to_string())),
            ("pid".into(), json!(1)),
            ("version".into(), json!("9.9.9")),
        ]);
        let error = parse_handshake(&line).expect_err("another protocol");
        prop_assert_eq!(error.code(), "INCOMPATIBLE_BACKEND");
    }

    #[test]
    fn log_parser_never_panics_on_any_text(line in any::<String>(), seq in any::<u64>(), pid in any::<Option<u32>>()) {
        let record = parse_log_line(&line, seq, pid);
        prop_assert_eq!((record.seq, record.pid), (seq, pid));
    }

    #[test]
    fn slog_records_map_onto_log_records(
        msg in any::<String>(),
        level in (
            prop_oneof![
                Just(("DEBUG", LogLevel::Debug)),
                Just(("INFO", LogLevel::Info)),
                Just(("WARN", LogLevel::Warn)),
                Just(("ERROR", LogLevel::Error)),
            ],
            prop_oneof![Just(String::new()), (-8i32..=8).prop_map(|n| format!("{n:+}"))],
            any::<bool>(),
        ),
        time in prop::option::of(any::<String>()),
        attrs in prop::collection::btree_map(
            "[a-zA-Z_.]{1,10}".prop_filter("not a reserved key", |k| !["msg", "level", "time"].contains(&k.as_str())),
            json_value(),
            0..5,
        ),
        ending in prop_oneof![Just(""), Just("\n"), Just("\r\n")],
    ) {
        let ((name, expected), offset, lower) = level;
        let mut name = format!("{name}{offset}");
        if lower {
            name = name.to_lowercase();
        }
        let mut fields = vec![
            ("msg".to_owned(), json!(msg)),
            ("level".to_owned(), json!(name)),
        ];
        if let Some(time) = &time {
            fields.push(("time".to_owned(), json!(time)));
        }
        fields.extend(attrs.clone());
        let line = format!("{}{ending}", object_line(&fields));
        let record = parse_log_line(&line, 1, Some(7));
        prop_assert_eq!(&record.message, &msg);
        prop_assert_eq!(record.level, expected, "level {}", name);
        prop_assert_eq!(&record.time, &time);
        let expected_fields: Map<String, Value> =
            attrs.iter().map(|(k, v)| (k.clone(), reparsed(v))).collect();
        prop_assert_eq!(&record.fields, &expected_fields);
    }

    /// slog always writes `time` and `level` as strings; whatever else a line carries under those
    /// names is kept as an attribute, not dropped.
    #[test]
    fn odd_time_and_level_values_are_kept_as_fields(
        msg in any::<String>(),
        time in json_value().prop_filter("not a string", |v| !v.is_string()),
        level in json_value().prop_filter("not a string", |v| !v.is_string()),
    ) {
        let line = object_line(&[
            ("msg".into(), json!(msg)),
            ("time".into(), time.clone()),
            ("level".into(), level.clone()),
        ]);
        let record = parse_log_line(&line, 1, None);
        prop_assert_eq!(&record.message, &msg);
        prop_assert_eq!(record.level, LogLevel::Info);
        prop_assert_eq!(record.time, None);
        prop_assert_eq!(record.fields.get("time"), Some(&reparsed(&time)));
        prop_assert_eq!(record.fields.get("level"), Some(&reparsed(&level)));
    }

    #[test]
    fn lines_that_are_not_json_objects_are_kept_verbatim(
        line in prop_oneof![
            any::<String>(),
            json_value().prop_filter("not an object", |v| !v.is_object()).prop_map(|v| v.to_string()),
            "panic: [a-z ]{0,40}\ngoroutine [0-9]{1,3} \\[running\\]:",
        ],
        ending in prop_oneof![Just(""), Just("\n"), Just("\r\n")],
    ) {
        let is_object = matches!(serde_json::from_str::<Value>(&line), Ok(Value::Object(_)));
        prop_assume!(!is_object);
        let record = parse_log_line(&format!("{line}{ending}"), 3, None);
        prop_assert_eq!(record.message, line.trim_end_matches(['\r', '\n']));
        prop_assert_eq!(record.level, LogLevel::Info);
        prop_assert!(record.fields.is_empty() && record.time.is_none());
    }
}

/// Regression cases found by the properties above, kept as plain tests.
#[test]
fn a_log_line_with_a_numeric_time_keeps_it() {
    let record = parse_log_line(r#"{"msg":"m","time":1764151200,"level":3}"#, 1, None);
    assert_eq!(record.time, None);
    assert_eq!(record.fields["time"], 1764151200);
    assert_eq!(record.fields["level"], 3);
}
