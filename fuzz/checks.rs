//! The invariants checked on every fuzz input, shared by the fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, through `#[path]`) and by `tests/fuzz_regressions.rs`, which runs
//! the kept inputs under plain `cargo test`.
//!
//! Each check takes the raw input bytes and panics when an invariant breaks; every panic
//! message starts with the check's tag in brackets. A check reads its input as text lines, or
//! through `arbitrary` (a few little-endian leading fields for numbers and keys, then the rest),
//! so that a kept input means the same thing to the fuzzer and to the test. See
//! `docs/FUZZING.md`.
//!
//! `TELEMETRY_FUZZ_KNOWN_BUGS=tag,tag` turns the assertions with those tags into no-ops, to keep
//! fuzzing past a bug that is already reported but not fixed yet.

// Each fuzz target uses one check and a few helpers; the regression test uses them all.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Number, Value};
use telemetry_core::anonymize::{
    self, Anonymizer, HashKey, anonymize_snapshot, round_json_numbers,
};
use telemetry_core::consent::{
    Category, Combine, Consent, ConsentBuilder, ConsentDecision, ConsentError, Polarity,
    SourceKind, ValueRule,
};
use telemetry_core::fuzzing::{
    KEPT_URL_SCHEMES, NO, YES, parse_value, parse_version_notice, round_f64, round_i64, round_u64,
    validate_endpoint,
};
use telemetry_core::{HistogramSnapshot, MAX_NAME_LEN, Report, Snapshot, validate_name};

/// A check: panics if the input breaks an invariant.
pub type Check = fn(&[u8]);

/// Every fuzz target: its name (the file in `fuzz/fuzz_targets/` and the directories in
/// `fuzz/seeds/` and `fuzz/regressions/`) and its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("consent_value", consent_value),
    ("consent_sources", consent_sources),
    ("endpoint", endpoint),
    ("metric_name", metric_name),
    ("round_numbers", round_numbers),
    ("hash", hash),
    ("json_numbers", json_numbers),
    ("snapshot", snapshot),
    ("report", report),
    ("version_notice", version_notice),
];

// ---------------------------------------------------------------------------------------------
// Assertions

fn known_bugs() -> &'static [String] {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        std::env::var("TELEMETRY_FUZZ_KNOWN_BUGS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Panics with `[tag] message` unless `ok`, or unless `tag` is listed in
/// `TELEMETRY_FUZZ_KNOWN_BUGS`.
#[track_caller]
fn check(tag: &str, ok: bool, message: impl FnOnce() -> String) {
    if !ok && !known_bugs().iter().any(|k| k == tag) {
        panic!("[{tag}] {}", message());
    }
}

/// A check's input read as `T` by `arbitrary`: fixed-size fields little endian (missing bytes
/// read as zero), the last field the rest of the input. `None` only if `T` cannot be read from
/// any bytes, which no input type here does.
fn input<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Significant digits (taken modulo 24), then the rest of the input.
#[derive(Arbitrary, Debug)]
struct Digits<'a> {
    digits: u8,
    rest: &'a [u8],
}

/// `round_numbers`' input.
#[derive(Arbitrary, Debug)]
struct Numbers {
    digits: u8,
    unsigned: u64,
    signed: i64,
    float: f64,
}

/// A one-byte key (repeated 32 times), then the text.
#[derive(Arbitrary, Debug)]
struct Keyed<'a> {
    key: u8,
    text: &'a [u8],
}

/// An extra quantile, then a JSON document.
#[derive(Arbitrary, Debug)]
struct WithQuantile<'a> {
    quantile: f64,
    json: &'a [u8],
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// Significant digits of an integer (trailing zeros do not count; 0 has one).
fn integer_digits(v: u64) -> u32 {
    let mut v = v;
    if v == 0 {
        return 1;
    }
    while v.is_multiple_of(10) {
        v /= 10;
    }
    v.ilog10() + 1
}

/// Significant digits of a float's shortest round-trip form (`1234.5` has 5).
fn float_digits(v: f64) -> u32 {
    let text = format!("{:e}", v.abs());
    let mantissa = text.split('e').next().unwrap_or("");
    mantissa.bytes().filter(u8::is_ascii_digit).count() as u32
}

/// `value` truncated toward zero to `digits` significant digits of its decimal form (the
/// shortest one that reads back as `value`, as JSON shows it), then read back. A float that
/// shows at most `digits` digits is kept, and the result is never larger in magnitude.
fn truncate_reference(value: f64, digits: u32) -> f64 {
    if value == 0.0 {
        return 0.0;
    }
    let shortest = format!("{:e}", value.abs());
    let (mantissa, exponent) = shortest.split_once('e').expect("`{:e}` has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let kept: String = mantissa
        .chars()
        .filter(char::is_ascii_digit)
        .take(digits as usize)
        .collect();
    let truncated: f64 = format!("0.{kept}e{}", exponent + 1)
        .parse()
        .expect("a decimal number");
    truncated.copysign(value)
}

fn check_round_u64(value: u64, digits: u32) {
    let d = digits.clamp(1, 20);
    let r = round_u64(value, digits);
    check("round-u64", r <= value, || {
        format!("round_u64({value}, {digits}) = {r} is above the value")
    });
    check("round-u64", integer_digits(r) <= d, || {
        format!("round_u64({value}, {digits}) = {r} has more than {d} significant digits")
    });
    let len = value.checked_ilog10().map_or(1, |l| l + 1);
    let unit = if len > d { 10u64.pow(len - d) } else { 1 };
    check(
        "round-u64",
        value - r < unit && r.is_multiple_of(unit),
        || format!("round_u64({value}, {digits}) = {r} is not the truncation to {d} digits"),
    );
    check("round-u64", round_u64(r, digits) == r, || {
        format!("round_u64 is not idempotent on {r} ({digits} digits)")
    });
}

fn check_round_i64(value: i64, digits: u32) {
    let r = round_i64(value, digits);
    check(
        "round-i64",
        r.unsigned_abs() == round_u64(value.unsigned_abs(), digits),
        || format!("round_i64({value}, {digits}) = {r} does not round the magnitude"),
    );
    check("round-i64", r == 0 || (r < 0) == (value < 0), || {
        format!("round_i64({value}, {digits}) = {r} changed the sign")
    });
}

/// The privacy rules on a float: finite in, finite out; never larger in magnitude; the sign
/// kept; at most `digits` significant digits.
fn check_round_f64_safe(value: f64, digits: u32, r: Option<f64>) {
    let d = digits.clamp(1, 17);
    if !value.is_finite() {
        check("round-f64", r.is_none(), || {
            format!("round_f64({value}, {digits}) = {r:?}, not None")
        });
        return;
    }
    let Some(r) = r else {
        check("round-f64", false, || {
            format!("round_f64({value:e}, {digits}) = None for a finite value")
        });
        return;
    };
    check("round-f64-nan", r.is_finite(), || {
        format!("round_f64({value:e}, {digits}) = Some({r}) for a finite value")
    });
    if !r.is_finite() {
        return;
    }
    check("round-f64-up", r.abs() <= value.abs(), || {
        format!("round_f64({value:e}, {digits}) = {r:e} is larger in magnitude")
    });
    check("round-f64", r == 0.0 || (r < 0.0) == (value < 0.0), || {
        format!("round_f64({value:e}, {digits}) = {r:e} changed the sign")
    });
    check("round-f64", float_digits(r) <= d, || {
        format!("round_f64({value:e}, {digits}) = {r:e} has more than {d} significant digits")
    });
}

fn check_round_f64(value: f64, digits: u32) {
    let r = round_f64(value, digits);
    check_round_f64_safe(value, digits, r);
    let Some(r) = r.filter(|r| r.is_finite()) else {
        return;
    };
    let d = digits.clamp(1, 17);
    let expected = truncate_reference(value, d);
    check("round-f64-digits", r == expected, || {
        format!(
            "round_f64({value:e}, {digits}) = {r:e}, but its truncation to {d} digits is \
             {expected:e}"
        )
    });
    check("round-f64-digits", round_f64(r, digits) == Some(r), || {
        format!("round_f64 is not idempotent on {r:e} ({digits} digits)")
    });
}

/// Input: 1 byte of significant digits, 8 bytes of `u64`, 8 of `i64`, 8 of `f64` (little
/// endian); missing bytes are zero.
pub fn round_numbers(data: &[u8]) {
    let Some(Numbers {
        digits,
        unsigned,
        signed,
        float,
    }) = input(data)
    else {
        return;
    };
    let digits = u32::from(digits % 24);
    check_round_u64(unsigned, digits);
    check_round_i64(signed, digits);
    check_round_f64(float, digits);
    // The same numbers through an anonymizer with those digits.
    let a = Anonymizer::new(HashKey::from_bytes([7; 32])).with_significant_digits(digits);
    check(
        "anonymizer",
        a.significant_digits() == digits.clamp(1, 6),
        || format!("significant_digits() after with_significant_digits({digits})"),
    );
    // The anonymizer never keeps more than 6 digits; the free functions take what they get.
    let digits = digits.clamp(1, 6);
    check(
        "anonymizer",
        a.round(unsigned) == round_u64(unsigned, digits),
        || format!("Anonymizer::round({unsigned}) with {digits} digits"),
    );
    check(
        "anonymizer",
        a.round_signed(signed) == round_i64(signed, digits),
        || format!("Anonymizer::round_signed({signed}) with {digits} digits"),
    );
    let r = a.round_float(float);
    check(
        "anonymizer",
        r.map(f64::to_bits) == round_f64(float, digits).map(f64::to_bits),
        || format!("Anonymizer::round_float({float:e}) with {digits} digits"),
    );
}

// ---------------------------------------------------------------------------------------------
// JSON numbers

/// Walks the original and the rounded JSON together: same shape, same strings, each number
/// rounded by the rules.
fn check_rounded_json(original: &Value, rounded: &Value, a: &Anonymizer, path: &str) {
    match (original, rounded) {
        (Value::Number(n), Value::Number(r)) => {
            if let Some(u) = n.as_u64() {
                check("json-numbers", r.as_u64() == Some(a.round(u)), || {
                    format!("{path}: {u} became {r}")
                });
            } else if let Some(i) = n.as_i64() {
                check(
                    "json-numbers",
                    r.as_i64() == Some(a.round_signed(i)),
                    || format!("{path}: {i} became {r}"),
                );
            } else {
                let f = n.as_f64().expect("a JSON number is u64, i64 or f64");
                let got = r.as_f64();
                match a.round_float(f) {
                    Some(expected) if expected.is_finite() => {
                        check_round_f64_safe(f, a.significant_digits(), got);
                        check("json-numbers", got == Some(expected), || {
                            format!("{path}: {f:e} became {r}, not {expected:e}")
                        });
                        let digits = a.significant_digits().min(17);
                        let reference = truncate_reference(f, digits);
                        check("round-f64-digits", got == Some(reference), || {
                            format!("{path}: {f:e} became {r}, not {reference:e}")
                        });
                    }
                    expected => check("round-f64-nan", false, || {
                        format!("{path}: round_float({f:e}) = {expected:?}, so it stays {r}")
                    }),
                }
            }
        }
        (Value::Array(xs), Value::Array(ys)) => {
            check("json-numbers", xs.len() == ys.len(), || {
                format!("{path}: array length changed")
            });
            for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                check_rounded_json(x, y, a, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(xs), Value::Object(ys)) => {
            check("json-numbers", xs.keys().eq(ys.keys()), || {
                format!("{path}: object keys changed")
            });
            for (k, x) in xs {
                if let Some(y) = ys.get(k) {
                    check_rounded_json(x, y, a, &format!("{path}.{k}"));
                }
            }
        }
        (x, y) => check("json-numbers", x == y, || format!("{path}: {x} became {y}")),
    }
}

/// Equal JSON values, with pairs of numbers that `numbers` decides on (`Some`) compared by
/// it, and all else (other numbers included) compared exactly.
fn json_equal(a: &Value, b: &Value, numbers: &impl Fn(&Number, &Number) -> Option<bool>) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers(x, y).unwrap_or(x == y),
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| json_equal(x, y, numbers))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| json_equal(x, y, numbers)))
        }
        (x, y) => x == y,
    }
}

/// Equal JSON values, taking any two floats as equal.
fn same_except_floats(a: &Value, b: &Value) -> bool {
    json_equal(a, b, &|x, y| (x.is_f64() && y.is_f64()).then_some(true))
}

/// Input: 1 byte of significant digits, then a JSON document.
pub fn json_numbers(data: &[u8]) {
    let Some(Digits { digits, rest }) = input(data) else {
        return;
    };
    let digits = u32::from(digits % 24);
    let Ok(original) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let a = Anonymizer::new(HashKey::from_bytes([9; 32])).with_significant_digits(digits);
    let mut rounded = original.clone();
    round_json_numbers(&mut rounded, &a);
    check_rounded_json(&original, &rounded, &a, "$");
    // Rounding again changes nothing (floats: see the `round-f64-digits` checks above).
    let mut twice = rounded.clone();
    round_json_numbers(&mut twice, &a);
    check("json-numbers", same_except_floats(&twice, &rounded), || {
        format!("round_json_numbers is not idempotent: {rounded} became {twice}")
    });
}

// ---------------------------------------------------------------------------------------------
// Hashing

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The pieces of a URL-like text that identify someone: user info, host, port, path, query.
fn url_pieces(url: &str) -> Vec<&str> {
    let Some((_, rest)) = url.split_once("://") else {
        return vec![url];
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, host_port) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (host, port) = host_port.rsplit_once(':').unwrap_or((host_port, ""));
    vec![user, host, port, tail]
}

/// Input: 1 byte of key (repeated 32 times), then the text hashed as a name and as a URL.
pub fn hash(data: &[u8]) {
    let Some(Keyed { key, text }) = input(data) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let a = Anonymizer::new(HashKey::from_bytes([key; 32]));
    let other = Anonymizer::new(HashKey::from_bytes([key ^ 1; 32]));

    let name = a.hash_name(text);
    check("hash-name", name.len() == 32 && is_lower_hex(&name), || {
        format!("hash_name({text:?}) = {name:?} is not 32 lowercase hex digits")
    });
    check("hash-name", a.hash_name(text) == name, || {
        format!("hash_name({text:?}) is not stable")
    });
    check("hash-name", other.hash_name(text) != name, || {
        format!("hash_name({text:?}) is the same under two keys")
    });

    let url = a.hash_url(text);
    let (scheme, hash) = match url.rsplit_once(':') {
        Some((scheme, hash)) => (Some(scheme), hash),
        None => (None, url.as_str()),
    };
    check("hash-url", hash.len() == 32 && is_lower_hex(hash), || {
        format!("hash_url({text:?}) = {url:?} does not end in 32 lowercase hex digits")
    });
    check("hash-url", hash != name, || {
        format!("hash_url({text:?}) and hash_name give the same hash")
    });
    check("hash-url", a.hash_url(text) == url, || {
        format!("hash_url({text:?}) is not stable")
    });
    let expected_scheme = text
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .filter(|s| KEPT_URL_SCHEMES.contains(&s.as_str()));
    check("hash-url", scheme == expected_scheme.as_deref(), || {
        format!("hash_url({text:?}) = {url:?} keeps scheme {scheme:?}, not {expected_scheme:?}")
    });
    // Nothing of the input but the kept scheme shows: a piece of the URL found in the output
    // can only be one made of hex digits (found in the hash by chance) or of the scheme.
    for piece in url_pieces(text) {
        if piece.is_empty() || !url.contains(piece) {
            continue;
        }
        let explained = piece.chars().all(|c| {
            matches!(c, '0'..='9' | 'a'..='f' | ':') || scheme.is_some_and(|s| s.contains(c))
        });
        check("hash-url", explained, || {
            format!("hash_url({text:?}) = {url:?} shows {piece:?}")
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Consent

/// The documented FerretDB spellings, written out here again so that a change to the lists in
/// the library is noticed.
const DOC_YES: &[&str] = &[
    "1", "t", "true", "y", "yes", "on", "enable", "enabled", "optin", "opt-in", "allow",
];
const DOC_NO: &[&str] = &[
    "0", "f", "false", "n", "no", "off", "disable", "disabled", "optout", "opt-out", "disallow",
    "forbid",
];

/// The FerretDB rule as documented: `Some(yes)`, or `None` for an unknown value.
fn doc_ferretdb(value: &str) -> Option<bool> {
    let word = value.trim().to_ascii_lowercase();
    if DOC_YES.contains(&word.as_str()) {
        Some(true)
    } else if DOC_NO.contains(&word.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// The Unleash rule as documented: "anything other than" `true`, `t` or `1` says no.
fn doc_unleash(value: &str) -> bool {
    matches!(value, "true" | "t" | "1")
}

fn simplify(r: &Result<bool, ConsentError>) -> Option<bool> {
    r.as_ref().ok().copied()
}

/// Input: the value (UTF-8).
pub fn consent_value(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    check("consent-lists", YES == DOC_YES && NO == DOC_NO, || {
        "the YES and NO lists differ from the documented ones".to_owned()
    });
    let ferret = parse_value("--telemetry", value, ValueRule::FerretDb);
    let unleash = parse_value("SEND_TELEMETRY", value, ValueRule::Unleash);
    check(
        "consent-value",
        simplify(&ferret) == doc_ferretdb(value),
        || format!("FerretDb rule on {value:?}: {ferret:?}"),
    );
    check("consent-value", unleash == Ok(doc_unleash(value)), || {
        format!("Unleash rule on {value:?}: {unleash:?}")
    });
    if unleash == Ok(true) {
        check("consent-value", ferret == Ok(true), || {
            format!("{value:?} is yes to Unleash but {ferret:?} to FerretDb")
        });
    }
    if let Err(e) = &ferret {
        match e {
            ConsentError::InvalidValue {
                setting: source,
                value: v,
            } => {
                check(
                    "consent-value",
                    source == "--telemetry" && v == value,
                    || format!("the error does not name the source and value: {e:?}"),
                );
            }
            other => check("consent-value", false, || {
                format!("parse_value gave {other:?}")
            }),
        }
        let message = e.to_string();
        // The value is repeated only when it is a short word (a typo); anything else may be
        // personal data pasted by mistake, and the message may be logged.
        let word = (1..=16).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        check(
            "consent-value",
            message.contains("--telemetry")
                && (message.contains(&format!("{value:?}")) == word)
                && DOC_YES.iter().chain(DOC_NO).all(|w| message.contains(w)),
            || {
                format!(
                    "the message does not name the source and choices, or shows a value it should not: {message}"
                )
            },
        );
    }
    // To FerretDB's rule surrounding whitespace and ASCII case do not matter; to Unleash's,
    // which compares exactly, a variant says yes only if it is itself `true`, `t` or `1`.
    for variant in [
        format!(" \t{value}\n "),
        value.to_ascii_uppercase(),
        value.to_ascii_lowercase(),
    ] {
        let a = simplify(&parse_value("x", value, ValueRule::FerretDb));
        let b = simplify(&parse_value("x", &variant, ValueRule::FerretDb));
        check("consent-value", a == b, || {
            format!("FerretDb: {value:?} gives {a:?} but {variant:?} gives {b:?}")
        });
        let yes = parse_value("x", &variant, ValueRule::Unleash) == Ok(true);
        check(
            "consent-value",
            !yes || matches!(variant.as_str(), "true" | "t" | "1"),
            || format!("Unleash: {variant:?} says yes"),
        );
    }
}

const FLAG: &str = "--telemetry";

#[derive(Clone, Debug)]
enum DocSource {
    Env {
        name: String,
        polarity: Polarity,
        rule: ValueRule,
        scope: Option<Category>,
    },
    Config {
        name: String,
        value: Option<String>,
        polarity: Polarity,
        rule: ValueRule,
    },
    Switch {
        name: String,
        present: bool,
        polarity: Polarity,
    },
}

#[derive(Clone, Debug, Default)]
struct ConsentInput {
    any_disables: bool,
    flag: Option<String>,
    executable: String,
    environment: HashMap<String, String>,
    sources: Vec<DocSource>,
}

fn polarity(word: &str) -> Option<Polarity> {
    match word {
        "in" => Some(Polarity::OptIn),
        "out" => Some(Polarity::OptOut),
        _ => None,
    }
}

fn rule(word: &str) -> Option<ValueRule> {
    match word {
        "ferretdb" => Some(ValueRule::FerretDb),
        "unleash" => Some(ValueRule::Unleash),
        _ => None,
    }
}

fn category(word: &str) -> Option<Category> {
    match word {
        "version" => Some(Category::VersionCheck),
        "usage" => Some(Category::UsageStatistics),
        "errors" => Some(Category::ErrorReports),
        _ => None,
    }
}

/// Reads the consent input format, one directive a line (others are ignored):
///
/// ```text
/// flag <value>                                  --telemetry=<value> (`flag` alone: absent)
/// exe <path>                                    the executable's path
/// set <NAME>=<value>                            an environment variable
/// env <NAME> <in|out> <ferretdb|unleash>        .env(..)
/// env-for <version|usage|errors> <NAME> <in|out> <ferretdb|unleash>   .env_for(..)
/// config <name> <in|out> <ferretdb|unleash>[=<value>]                 .config(..)
/// switch <name> <in|out> <on|off>               .switch(name, on, ..)
/// combine any                                   .combine(Combine::AnyDisables)
/// ```
fn parse_consent_input(text: &str) -> ConsentInput {
    let mut input = ConsentInput {
        executable: "/usr/bin/server".to_owned(),
        ..ConsentInput::default()
    };
    for line in text.lines() {
        let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
        match op {
            "flag" if line == "flag" => input.flag = None,
            "flag" => input.flag = Some(rest.to_owned()),
            "exe" => input.executable = rest.to_owned(),
            "combine" => input.any_disables = rest == "any",
            "switch" => {
                if let [name, p, on] = rest.split(' ').collect::<Vec<_>>()[..]
                    && let Some(polarity) = polarity(p)
                    && (on == "on" || on == "off")
                {
                    input.sources.push(DocSource::Switch {
                        name: name.to_owned(),
                        present: on == "on",
                        polarity,
                    });
                }
            }
            "set" => {
                if let Some((name, value)) = rest.split_once('=') {
                    input.environment.insert(name.to_owned(), value.to_owned());
                }
            }
            "env" | "env-for" => {
                let words: Vec<&str> = rest.split(' ').collect();
                let (scope, words) = match (op, words.split_first()) {
                    ("env-for", Some((c, words))) => match category(c) {
                        Some(c) => (Some(c), words),
                        None => continue,
                    },
                    ("env", _) => (None, &words[..]),
                    _ => continue,
                };
                if let [name, p, r] = words
                    && let (Some(polarity), Some(rule)) = (polarity(p), rule(r))
                {
                    input.sources.push(DocSource::Env {
                        name: (*name).to_owned(),
                        polarity,
                        rule,
                        scope,
                    });
                }
            }
            "config" => {
                let (spec, value) = match rest.split_once('=') {
                    Some((spec, value)) => (spec, Some(value.to_owned())),
                    None => (rest, None),
                };
                if let [name, p, r] = spec.split(' ').collect::<Vec<_>>()[..]
                    && let (Some(polarity), Some(rule)) = (polarity(p), rule(r))
                {
                    input.sources.push(DocSource::Config {
                        name: name.to_owned(),
                        value,
                        polarity,
                        rule,
                    });
                }
            }
            _ => {}
        }
    }
    input
}

fn builder(input: &ConsentInput) -> ConsentBuilder {
    let environment = input.environment.clone();
    let mut b = ConsentBuilder::new()
        .environment(move |name| environment.get(name).cloned())
        .executable(&input.executable)
        .flag(FLAG, input.flag.as_deref());
    if input.any_disables {
        b = b.combine(Combine::AnyDisables);
    }
    for source in &input.sources {
        b = match source {
            DocSource::Env {
                name,
                polarity,
                rule,
                scope: None,
            } => b.env(name, *polarity, *rule),
            DocSource::Env {
                name,
                polarity,
                rule,
                scope: Some(c),
            } => b.env_for(*c, name, *polarity, *rule),
            DocSource::Config {
                name,
                value,
                polarity,
                rule,
            } => b.config(name, value.as_deref(), *polarity, *rule),
            DocSource::Switch {
                name,
                present,
                polarity,
            } => b.switch(name, *present, *polarity),
        };
    }
    b
}

#[derive(Debug, PartialEq)]
enum Expected {
    Invalid { source: String, value: String },
    Conflict { disabled_by: &'static str },
    Decided(Consent, SourceKind, BTreeMap<Category, SourceKind>),
}

fn read_by(rule: ValueRule, source: &str, value: &str) -> Result<bool, Expected> {
    match rule {
        ValueRule::Unleash => Ok(doc_unleash(value)),
        ValueRule::FerretDb => doc_ferretdb(value).ok_or_else(|| Expected::Invalid {
            source: source.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// The documented resolution order (module docs of `telemetry_core::consent`), restated.
fn doc_resolve(input: &ConsentInput) -> Expected {
    let flag = match &input.flag {
        Some(v) => match read_by(ValueRule::FerretDb, FLAG, v) {
            Ok(yes) => Some(yes),
            Err(e) => return e,
        },
        None => None,
    };
    // Set means "do not track", except an empty value or a plain no.
    let do_not_track = input.environment.get("DO_NOT_TRACK").is_some_and(|v| {
        let v = v.trim().to_ascii_lowercase();
        !v.is_empty() && !["0", "f", "false", "n", "no", "off"].contains(&v.as_str())
    });
    let executable = Path::new(&input.executable).file_name().is_some_and(|n| {
        n.to_string_lossy()
            .to_ascii_lowercase()
            .contains("donottrack")
    });
    for (disabled, by, kind) in [
        (do_not_track, "DO_NOT_TRACK", SourceKind::DoNotTrack),
        (
            executable,
            "the executable's name (`donottrack`)",
            SourceKind::ExecutableName,
        ),
    ] {
        if disabled {
            return if flag == Some(true) {
                Expected::Conflict { disabled_by: by }
            } else {
                Expected::Decided(Consent::Disabled, kind, BTreeMap::new())
            };
        }
    }
    let state = |enabled: bool| {
        if enabled {
            Consent::Enabled
        } else {
            Consent::Disabled
        }
    };
    // Every decision, in order: the flag, then the product's sources. An opt-out source's
    // plain "no" (`0 f false n no off`) is no decision; under FerretDB's rule, a "no" word that
    // names an opt-out (`disable`, `opt-out`, `forbid`, ...) disables.
    let meaning = |polarity: Polarity, yes: bool| match (polarity, yes) {
        (Polarity::OptIn, yes) => Some(state(yes)),
        (Polarity::OptOut, true) => Some(Consent::Disabled),
        (Polarity::OptOut, false) => None,
    };
    let plain_no = |value: &str| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "0" | "f" | "false" | "n" | "no" | "off"
        )
    };
    let decide = |polarity: Polarity, rule: ValueRule, value: &str, yes: bool| {
        if polarity == Polarity::OptOut && rule == ValueRule::FerretDb && !yes && !plain_no(value) {
            Some(Consent::Disabled)
        } else {
            meaning(polarity, yes)
        }
    };
    let mut said: Vec<(Consent, SourceKind)> = flag
        .map(|yes| (state(yes), SourceKind::Flag(FLAG.to_owned())))
        .into_iter()
        .collect();
    let mut narrowed = BTreeMap::new();
    for source in &input.sources {
        match source {
            DocSource::Env {
                name,
                polarity,
                rule,
                scope,
            } => {
                let Some(value) = input.environment.get(name) else {
                    continue;
                };
                let yes = match read_by(*rule, name, value) {
                    Ok(yes) => yes,
                    Err(e) => return e,
                };
                let Some(decided) = decide(*polarity, *rule, value, yes) else {
                    continue;
                };
                match scope {
                    Some(c) => {
                        if decided == Consent::Disabled {
                            narrowed.entry(*c).or_insert(SourceKind::Env(name.clone()));
                        }
                    }
                    None => said.push((decided, SourceKind::Env(name.clone()))),
                }
            }
            DocSource::Config {
                name,
                value,
                polarity,
                rule,
            } => {
                let Some(value) = value else { continue };
                let yes = match read_by(*rule, name, value) {
                    Ok(yes) => yes,
                    Err(e) => return e,
                };
                if let Some(decided) = decide(*polarity, *rule, value, yes) {
                    said.push((decided, SourceKind::Config(name.clone())));
                }
            }
            DocSource::Switch {
                name,
                present,
                polarity,
            } => {
                if *present && let Some(decided) = meaning(*polarity, true) {
                    said.push((decided, SourceKind::Flag(name.clone())));
                }
            }
        }
    }
    let decision = if input.any_disables {
        said.iter()
            .find(|(s, _)| *s == Consent::Disabled)
            .or(said.first())
            .cloned()
    } else {
        said.first().cloned()
    };
    let (consent, by) = decision.unwrap_or((Consent::Undecided, SourceKind::Default));
    Expected::Decided(consent, by, narrowed)
}

fn check_decision(d: &ConsentDecision) {
    for c in Category::ALL {
        let expected = if d.state == Consent::Disabled || d.narrowed.contains_key(&c) {
            Consent::Disabled
        } else {
            d.state
        };
        check("consent-decision", d.category(c) == expected, || {
            format!("category({c:?}) of {d:?}")
        });
    }
    let all = Category::ALL
        .iter()
        .all(|c| d.category(*c) == Consent::Disabled);
    check("consent-decision", d.all_disabled() == all, || {
        format!("all_disabled() of {d:?}")
    });
    check(
        "consent-decision",
        d.narrowed.values().all(|k| matches!(k, SourceKind::Env(_))),
        || format!("a category narrowed by something else than a scoped variable: {d:?}"),
    );
}

/// Input: the consent directives of [`parse_consent_input`] (UTF-8).
pub fn consent_sources(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = parse_consent_input(text);
    let got = builder(&input).resolve();
    let expected = doc_resolve(&input);
    let got_simple = match &got {
        Ok(d) => {
            check_decision(d);
            Expected::Decided(d.state, d.decided_by.clone(), d.narrowed.clone())
        }
        Err(ConsentError::InvalidValue {
            setting: source,
            value,
        }) => Expected::Invalid {
            source: source.clone(),
            value: value.clone(),
        },
        Err(ConsentError::Conflict { disabled_by, flag }) => {
            check("consent-sources", flag == FLAG, || {
                format!("the conflict names {flag:?}, not the flag")
            });
            match ["DO_NOT_TRACK", "the executable's name (`donottrack`)"]
                .into_iter()
                .find(|b| b == disabled_by)
            {
                Some(by) => Expected::Conflict { disabled_by: by },
                None => Expected::Invalid {
                    source: format!("conflict with {disabled_by}"),
                    value: String::new(),
                },
            }
        }
        Err(other) => Expected::Invalid {
            source: format!("unknown error {other:?}"),
            value: String::new(),
        },
    };
    check("consent-sources", got_simple == expected, || {
        format!("{input:?} resolved to {got:?}; the documented order gives {expected:?}")
    });
    if let Err(e) = &got {
        check("consent-sources", !e.to_string().is_empty(), || {
            "an empty error message".to_owned()
        });
    }
    // Resolving is a pure function of the sources.
    let again = builder(&input).resolve();
    check("consent-sources", again == got, || {
        format!("{input:?} resolved twice to {got:?} and {again:?}")
    });
}

// ---------------------------------------------------------------------------------------------
// Configuration values: endpoints and metric names

/// The host of `rest` (what follows `scheme://`) by the strict RFC 3986 reading of
/// `host[:port]` before the first `/`, `?` or `#`: a bracketed IPv6 address, or a host without
/// `:`, and a port of at most 65535. `None` if the authority is not of that form (a real client refuses
/// such a URL, or may read another host from it than the validator did).
fn strict_host(rest: &str) -> Option<String> {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port,
            None if after.is_empty() => "",
            None => return None,
        };
        (inside.parse::<Ipv6Addr>().ok()?.to_string(), port)
    } else {
        let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
        (host.to_owned(), port)
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
        && (authority.starts_with('[') || !host.contains(':'));
    let port_ok = port.is_empty() || port.parse::<u16>().is_ok();
    (host_ok && port_ok).then_some(host)
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Input: the endpoint (UTF-8).
pub fn endpoint(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match validate_endpoint(text) {
        Ok(()) => {
            let lower = text.to_ascii_lowercase();
            let https = lower.starts_with("https://") && text.len() > "https://".len();
            let http = lower.starts_with("http://");
            check("endpoint", https || http, || {
                format!("{text:?} is accepted but is neither https:// nor http://")
            });
            check("endpoint", !text.contains(['?', '#']), || {
                format!("{text:?} is accepted with a query or fragment, which can hold a token")
            });
            let authority = text[text.find("://").map_or(0, |i| i + 3)..]
                .split(['/', '?', '#'])
                .next()
                .unwrap_or("");
            check(
                "endpoint",
                !authority.is_empty() && !authority.contains('@'),
                || format!("{text:?} is accepted without a host or with user information"),
            );
            if http {
                // Plain http only to loopback: the host as a client reads it must be one.
                match strict_host(&text["http://".len()..]) {
                    Some(host) => check("endpoint", is_loopback_host(&host), || {
                        format!("{text:?} is accepted as http:// to {host:?}, not a loopback host")
                    }),
                    None => check("endpoint-malformed", false, || {
                        format!(
                            "{text:?} is accepted as http:// to loopback, but its authority \
                             {authority:?} is not host[:port]"
                        )
                    }),
                }
            }
        }
        Err(e) => {
            // The error names the endpoint without what can hold a credential.
            let cut = text.split(['?', '#']).next().unwrap_or("");
            let shown = match cut.split_once("://") {
                Some((scheme, rest)) => {
                    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                    let host = authority.rsplit('@').next().unwrap_or("");
                    format!("{scheme}://{host}{path}")
                }
                None => cut.to_owned(),
            };
            check(
                "endpoint",
                e.endpoint == shown && !e.reason.is_empty(),
                || format!("the error for {text:?} is {e:?}, expected it to show {shown:?}"),
            );
            check("endpoint", e.to_string().contains(&shown), || {
                format!("the message for {text:?} does not name it: {e}")
            });
        }
    }
}

/// The documented rule for metric names, restated: segments of ASCII letters, digits and `_`,
/// not starting with a digit, joined by `.` or `::`; at most `MAX_NAME_LEN` bytes.
fn doc_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|part| {
            part.split("::").all(|segment| {
                segment
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        })
}

/// Input: the name (UTF-8).
pub fn metric_name(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let got = validate_name(name);
    check("metric-name", got.is_ok() == doc_valid_name(name), || {
        format!("validate_name({name:?}) = {got:?}")
    });
    if let Err(e) = got {
        check(
            "metric-name",
            e.name == name && !e.reason.is_empty(),
            || format!("the error for {name:?} is {e:?}"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots and reports

const QUANTILES: &[f64] = &[
    0.0,
    1e-9,
    0.001,
    0.25,
    0.5,
    0.9,
    0.99,
    0.999,
    1.0 - 1e-12,
    1.0,
];
const BAD_QUANTILES: &[f64] = &[-0.0001, 1.0001, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

fn check_histogram(name: &str, h: &HistogramSnapshot, extra_q: f64) {
    let count = h.count();
    let empty = count == 0;
    check("histogram", h.min().is_none() == empty, || {
        format!("{name}: min() of a histogram of count {count}")
    });
    check("histogram", h.max().is_none() == empty, || {
        format!("{name}: max() of a histogram of count {count}")
    });
    check("histogram", h.mean().is_none() == empty, || {
        format!("{name}: mean() of a histogram of count {count}")
    });
    for b in h.buckets() {
        check("histogram", b.lower <= b.upper, || {
            format!("{name}: bucket {b:?} has lower > upper")
        });
    }
    for &q in BAD_QUANTILES {
        check("quantile", h.quantile(q).is_none(), || {
            format!("{name}: quantile({q}) is {:?}, not None", h.quantile(q))
        });
    }
    let (Some(min), Some(max)) = (h.min(), h.max()) else {
        for &q in QUANTILES {
            check("quantile", h.quantile(q).is_none(), || {
                format!("{name}: quantile({q}) of an empty histogram")
            });
        }
        return;
    };
    check("quantile", h.quantile(0.0) == Some(min), || {
        format!("{name}: quantile(0) is not the min {min}")
    });
    check("quantile", h.quantile(1.0) == Some(max), || {
        format!("{name}: quantile(1) is not the max {max}")
    });
    // Deserialized input may have min > max: then between the two.
    let (lo, hi) = (min.min(max), min.max(max));
    let ascending = h
        .buckets()
        .zip(h.buckets().skip(1))
        .all(|(a, b)| a.lower < b.lower);
    let mut last = None;
    for q in QUANTILES.iter().copied().chain([extra_q]) {
        if !(0.0..1.0).contains(&q) || q == 0.0 {
            continue;
        }
        let Some(v) = h.quantile(q) else {
            check("quantile", false, || {
                format!("{name}: quantile({q}) is None with count {count}")
            });
            continue;
        };
        check("quantile", lo <= v && v <= hi, || {
            format!("{name}: quantile({q}) = {v} is outside [{lo}, {hi}] (min {min}, max {max})")
        });
        if ascending && extra_q != q {
            check("quantile", last.is_none_or(|l| l <= v), || {
                format!("{name}: quantile({q}) = {v} is below a smaller quantile's {last:?}")
            });
            last = Some(v);
        }
    }
}

fn u128_sum(values: impl Iterator<Item = u64>) -> u128 {
    values.map(u128::from).sum()
}

fn saturated(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn check_anonymized_snapshot(s: &Snapshot, out: &Snapshot, a: &Anonymizer) {
    check("anonymize-snapshot", s.len() == out.len(), || {
        "the anonymized snapshot has other metrics".to_owned()
    });
    for (name, family) in &s.counters {
        let Some(af) = out.counters.get(name) else {
            check("anonymize-snapshot", false, || {
                format!("counter {name} lost")
            });
            continue;
        };
        check(
            "anonymize-snapshot",
            af.unit == family.unit
                && af.description == family.description
                && af.series.len() == family.series.len(),
            || format!("counter {name}: unit, description or series changed"),
        );
        for (x, y) in family.series.iter().zip(&af.series) {
            check(
                "anonymize-snapshot",
                x.labels == y.labels && y.value == a.round(x.value),
                || format!("counter {name}: {} became {}", x.value, y.value),
            );
            check(
                "anonymize-snapshot",
                integer_digits(y.value) <= a.significant_digits(),
                || format!("counter {name}: {} keeps too many digits", y.value),
            );
        }
    }
    for (name, family) in &s.gauges {
        let Some(af) = out.gauges.get(name) else {
            check("anonymize-snapshot", false, || format!("gauge {name} lost"));
            continue;
        };
        for (x, y) in family.series.iter().zip(&af.series) {
            check(
                "anonymize-snapshot",
                x.labels == y.labels && y.value == a.round_signed(x.value),
                || format!("gauge {name}: {} became {}", x.value, y.value),
            );
        }
    }
    for (name, family) in &s.histograms {
        let Some(af) = out.histograms.get(name) else {
            check("anonymize-snapshot", false, || {
                format!("histogram {name} lost")
            });
            continue;
        };
        for (x, y) in family.series.iter().zip(&af.series) {
            let (hx, hy) = (&x.value, &y.value);
            let numbers_ok = hy.count() == a.round(hx.count())
                && hy.sum() == a.round(hx.sum())
                && hx.buckets().count() == hy.buckets().count()
                && hx.buckets().zip(hy.buckets()).all(|(bx, by)| {
                    bx.lower == by.lower && bx.upper == by.upper && by.count == a.round(bx.count)
                });
            check(
                "anonymize-snapshot",
                x.labels == y.labels && numbers_ok,
                || format!("histogram {name}: {hx:?} became {hy:?}"),
            );
        }
    }
}

/// Every lookup and operation of a snapshot, with their invariants.
fn check_snapshot(s: &Snapshot, extra_q: f64) {
    // Serializing and reading back gives the same snapshot, and the same bytes again.
    let json = serde_json::to_vec(s).expect("a snapshot serializes");
    let back: Snapshot = serde_json::from_slice(&json).expect("a serialized snapshot reads back");
    check("snapshot-json", &back == s, || {
        format!(
            "the snapshot changed through JSON: {}",
            String::from_utf8_lossy(&json)
        )
    });
    let again = serde_json::to_vec(&back).expect("a snapshot serializes");
    check("snapshot-json", again == json, || {
        "serializing twice gives other bytes".to_owned()
    });
    let metrics = s.counters.len() + s.gauges.len() + s.histograms.len();
    check(
        "snapshot",
        s.len() == metrics && s.is_empty() == (metrics == 0),
        || "len() or is_empty() does not count the metrics".to_owned(),
    );

    for (name, family) in &s.counters {
        let total = saturated(u128_sum(family.series.iter().map(|x| x.value)));
        check("counter", s.counter(name) == Some(total), || {
            format!("counter({name}) = {:?}, not {total}", s.counter(name))
        });
        for series in &family.series {
            let labels: Vec<(&str, &str)> = series
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let first = family.series.iter().find(|x| x.labels == series.labels);
            check(
                "counter",
                s.counter_with(name, &labels) == first.map(|x| x.value),
                || format!("counter_with({name}, {labels:?})"),
            );
        }
    }
    for (name, family) in &s.gauges {
        let expected = (!family.series.is_empty()).then(|| {
            family
                .series
                .iter()
                .fold(0i64, |t, x| t.saturating_add(x.value))
        });
        check("gauge", s.gauge(name) == expected, || {
            format!("gauge({name}) = {:?}, not {expected:?}", s.gauge(name))
        });
    }
    for (name, family) in &s.histograms {
        let Some(h) = s.histogram(name) else {
            check("histogram", false, || format!("histogram({name}) is None"));
            continue;
        };
        let live = family.series.iter().filter(|x| x.value.count() > 0);
        let count = saturated(u128_sum(live.clone().map(|x| x.value.count())));
        check("histogram", h.count() == count, || {
            format!("histogram({name}).count() = {}, not {count}", h.count())
        });
        let min = live.clone().map(|x| x.value.min().unwrap_or(0)).min();
        let max = live.map(|x| x.value.max().unwrap_or(0)).max();
        check("histogram", h.min() == min && h.max() == max, || {
            format!(
                "histogram({name}): min/max {:?}/{:?}, not {min:?}/{max:?}",
                h.min(),
                h.max()
            )
        });
        check_histogram(name, &h, extra_q);
        for series in &family.series {
            check_histogram(name, &series.value, extra_q);
            let labels: Vec<(&str, &str)> = series
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let first = family.series.iter().find(|x| x.labels == series.labels);
            check(
                "histogram",
                s.histogram_with(name, &labels) == first.map(|x| &x.value),
                || format!("histogram_with({name}, {labels:?})"),
            );
        }
    }
    for name in ["", "no.such.metric"] {
        if !s.counters.contains_key(name) {
            check("counter", s.counter(name).is_none(), || {
                format!("counter({name:?}) of a missing counter")
            });
        }
    }

    // The delta from nothing is the snapshot itself; the delta from itself is zero.
    let from_nothing = s.delta(&Snapshot::default());
    check("delta", &from_nothing == s, || {
        "delta(empty) is not the snapshot".to_owned()
    });
    let zero = s.delta(s);
    check(
        "delta",
        zero.len() == s.len() && zero.gauges == s.gauges,
        || "delta(self) lost metrics or changed gauges".to_owned(),
    );
    for (name, family) in &zero.counters {
        check(
            "delta-self",
            family.series.iter().all(|x| x.value == 0),
            || {
                format!(
                    "delta(self): counter {name} is {:?}, not 0",
                    zero.counter(name)
                )
            },
        );
    }
    for (name, family) in &zero.histograms {
        for x in &family.series {
            check(
                "delta-self",
                x.value.count() == 0 && x.value.buckets().count() == 0,
                || format!("delta(self): histogram {name} is {:?}, not empty", x.value),
            );
        }
    }

    // Merging into nothing keeps the totals; merging a snapshot into itself doubles them.
    let mut merged = Snapshot::default();
    merged.merge(s);
    let mut doubled = s.clone();
    doubled.merge(s);
    for (name, family) in &s.counters {
        let total = u128_sum(family.series.iter().map(|x| x.value));
        check(
            "merge",
            merged.counter(name) == Some(saturated(total)),
            || {
                format!(
                    "merge into empty: counter {name} = {:?}",
                    merged.counter(name)
                )
            },
        );
        check(
            "merge",
            doubled.counter(name) == Some(saturated(2 * total)),
            || {
                format!(
                    "merge into self: counter {name} = {:?}",
                    doubled.counter(name)
                )
            },
        );
        let labels: Vec<_> = merged.counters[name]
            .series
            .iter()
            .map(|x| &x.labels)
            .collect();
        check("merge", labels.windows(2).all(|w| w[0] < w[1]), || {
            format!("merge into empty: counter {name} has unsorted or repeated label sets")
        });
    }
    for name in s.histograms.keys() {
        let (Some(h), Some(m)) = (s.histogram(name), merged.histogram(name)) else {
            check("merge", false, || {
                format!("merge into empty lost histogram {name}")
            });
            continue;
        };
        check(
            "merge",
            (h.count(), h.sum(), h.min(), h.max()) == (m.count(), m.sum(), m.min(), m.max()),
            || format!("merge into empty: histogram {name} {h:?} became {m:?}"),
        );
        check_histogram(name, &m, extra_q);
        for x in &merged.histograms[name].series {
            check_histogram(name, &x.value, extra_q);
        }
    }
    for (name, family) in &s.gauges {
        check(
            "merge",
            merged.gauges.get(name).map(|f| f.series.len()) <= Some(family.series.len()),
            || format!("merge into empty: gauge {name} gained series"),
        );
    }
    for d in [&zero, &merged, &doubled] {
        let json = serde_json::to_vec(d).expect("a snapshot serializes");
        let back: Snapshot = serde_json::from_slice(&json).expect("it reads back");
        check("snapshot-json", &back == d, || {
            "a delta or merge result changed through JSON".to_owned()
        });
    }

    // Anonymization rounds every number and keeps everything else.
    for digits in [1, 6] {
        let a = Anonymizer::new(HashKey::from_bytes([3; 32])).with_significant_digits(digits);
        let out = anonymize_snapshot(s, &a);
        check_anonymized_snapshot(s, &out, &a);
    }
}

/// Input: 8 bytes of an extra quantile (`f64`, little endian), then the JSON of a snapshot.
pub fn snapshot(data: &[u8]) {
    let Some(WithQuantile {
        quantile: extra_q,
        json,
    }) = input(data)
    else {
        return;
    };
    let Ok(s) = serde_json::from_slice::<Snapshot>(json) else {
        return;
    };
    check_snapshot(&s, extra_q);
}

/// JSON values equal up to float rounding in JSON's text form.
fn same_json(a: &Value, b: &Value) -> bool {
    json_equal(a, b, &|x, y| {
        (x.is_f64() || y.is_f64()).then(|| match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= x.abs().max(y.abs()) * 1e-15,
            _ => false,
        })
    })
}

fn same_report(a: &Report, b: &Report) -> bool {
    a.schema_version == b.schema_version
        && a.framework == b.framework
        && a.application == b.application
        && a.instance_id == b.instance_id
        && a.installation_id == b.installation_id
        && a.trigger == b.trigger
        && a.timestamp == b.timestamp
        && a.uptime_seconds == b.uptime_seconds
        && a.metrics == b.metrics
        && a.sections().len() == b.sections().len()
        && a.sections()
            .iter()
            .all(|(k, x)| b.sections().get(k).is_some_and(|y| same_json(x, y)))
}

/// Input: 8 bytes of an extra quantile (`f64`, little endian), then the JSON of a report.
pub fn report(data: &[u8]) {
    let Some(WithQuantile {
        quantile: extra_q,
        json,
    }) = input(data)
    else {
        return;
    };
    let Ok(r) = serde_json::from_slice::<Report>(json) else {
        return;
    };
    let json = r.to_json();
    match serde_json::from_str::<Report>(&json) {
        Ok(back) => check("report-json", same_report(&back, &r), || {
            format!("the report changed through JSON: {json}")
        }),
        Err(e) => check("report-json", false, || {
            format!("to_json() does not read back ({e}): {json}")
        }),
    }
    check(
        "report-json",
        serde_json::from_str::<Value>(&r.to_json_pretty())
            .is_ok_and(|v| serde_json::from_str::<Value>(&json).is_ok_and(|w| same_json(&v, &w))),
        || "to_json_pretty() and to_json() disagree".to_owned(),
    );

    let a = anonymize::global();
    let out = r.anonymized();
    check(
        "report-anonymized",
        // Rounded down to the whole hour (`anonymize::round_clock`).
        out.uptime_seconds == r.uptime_seconds - r.uptime_seconds % 3600,
        || format!("uptime {} became {}", r.uptime_seconds, out.uptime_seconds),
    );
    check_anonymized_snapshot(&r.metrics, &out.metrics, &a);
    check(
        "report-anonymized",
        out.application == r.application
            && out.framework == r.framework
            && out.instance_id == r.instance_id
            && out.installation_id == r.installation_id
            && out.trigger == r.trigger
            && out.timestamp == r.timestamp
            && out.schema_version == r.schema_version,
        || "anonymized() changed a field that is not a number".to_owned(),
    );
    check(
        "report-anonymized",
        out.sections().keys().eq(r.sections().keys()),
        || "anonymized() changed the section names".to_owned(),
    );
    for (name, section) in r.sections() {
        if let Some(rounded) = out.sections().get(name) {
            check_rounded_json(section, rounded, &a, &format!("sections.{name}"));
        }
    }
    check(
        "report-json",
        serde_json::from_str::<Report>(&out.to_json()).is_ok(),
        || "the anonymized report does not read back".to_owned(),
    );
    check_snapshot(&r.metrics, extra_q);
}

// ---------------------------------------------------------------------------------------------
// Version notices

/// Input: the HTTP answer's body.
pub fn version_notice(data: &[u8]) {
    let got = parse_version_notice(data);
    // The documented rule, restated.
    let expected = (data.len() <= 64 << 10)
        .then(|| serde_json::from_slice::<Value>(data).ok())
        .flatten()
        .and_then(|v| {
            v.get("latest_version")?
                .as_str()
                .map(|s| s.trim().to_owned())
        })
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'))
        });
    check("version-notice", got == expected, || {
        format!(
            "parse_version_notice({:?}) = {got:?}, not {expected:?}",
            String::from_utf8_lossy(data)
        )
    });
    if let Some(v) = &got {
        check(
            "version-notice",
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+')),
            || format!("the version {v:?} is not plain"),
        );
    }
}
