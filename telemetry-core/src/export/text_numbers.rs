//! Numbers as the text expositions spell them: integers in decimal (written without
//! formatting machinery, as this is most of a scrape's bytes), floats as Rust's shortest
//! round-trip form with `+Inf`, `-Inf` and `NaN` spelled as Prometheus and OpenMetrics want.

use std::io::Write as _;

/// Writes the decimal digits of `value` to `buf` so that they end at `end`; returns where
/// they start.
fn write_digits(buf: &mut [u8; 23], end: usize, mut value: u64) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut start = end;
    while value >= 100 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if value >= 10 {
        let pair = value as usize * 2;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        buf[start] = b'0' + value as u8;
    }
    start
}

/// Appends the decimal digits of `value` (at most 20).
fn push_u64(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 23];
    let start = write_digits(&mut buf, 23, value);
    out.extend_from_slice(&buf[start..]);
}

/// Appends the end of a sample line: a space, `-` if `negative`, the digits of `value`, a
/// line feed.
pub(super) fn push_value_line(out: &mut Vec<u8>, negative: bool, value: u64) {
    let mut buf = [0u8; 23];
    buf[22] = b'\n';
    let mut start = write_digits(&mut buf, 22, value);
    if negative {
        start -= 1;
        buf[start] = b'-';
    }
    start -= 1;
    buf[start] = b' ';
    out.extend_from_slice(&buf[start..]);
}

/// Appends the end of a sample line with a float value: a space, the float, a line feed.
pub(super) fn push_float_line(out: &mut Vec<u8>, x: f64) {
    out.push(b' ');
    push_float(out, x);
    out.push(b'\n');
}

/// Appends a float as the formats spell it: shortest round-trip digits, `+Inf`, `-Inf`, `NaN`.
pub(super) fn push_float(out: &mut Vec<u8>, x: f64) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        // An integer below 2^53 (so below 1e16, where `Debug` switches to an exponent):
        // `Debug` writes its digits and `.0`, which is what this writes without `fmt`.
        if x.is_sign_negative() {
            out.push(b'-');
        }
        push_u64(out, x.abs() as u64);
        out.extend_from_slice(b".0");
    } else {
        // `Debug` is the shortest representation that reads back as the same float, with an
        // exponent for very small and very large magnitudes (`1.023e-6`), and always a `.` or
        // an exponent.
        let _ = write!(out, "{x:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn into_string(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    fn fmt_float(x: f64) -> String {
        let mut out = Vec::new();
        push_float(&mut out, x);
        into_string(out)
    }

    #[test]
    fn numbers_are_spelled_like_std() {
        let mut values = vec![0, 1, 9, 10, 99, 100, 101, 999, 1000, u64::MAX, u64::MAX - 1];
        for e in 0..20 {
            let p = 10u64.pow(e);
            values.extend([p - 1, p, p + 1, p.saturating_mul(7).saturating_add(3)]);
        }
        for v in values {
            let mut out = Vec::new();
            push_u64(&mut out, v);
            assert_eq!(into_string(out), v.to_string());
            let mut line = Vec::new();
            push_value_line(&mut line, false, v);
            push_value_line(&mut line, true, v);
            assert_eq!(into_string(line), format!(" {v}\n -{v}\n"));
        }
        let two53 = 9_007_199_254_740_992.0f64;
        let mut floats = vec![
            0.0,
            -0.0,
            1.0,
            -5.0,
            0.5,
            1e-5,
            1e15,
            1e16,
            1e21,
            two53 - 1.0,
            two53,
            two53 + 2.0,
            -two53 + 1.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
        ];
        for v in [1u64, 999, 1023, 1_500_000, 123_456_789_012, u64::MAX] {
            floats.extend([v as f64, v as f64 / 1e9, -(v as f64) / 1e9]);
        }
        for x in floats {
            assert_eq!(fmt_float(x), format!("{x:?}"), "{x}");
        }
    }

    #[test]
    fn float_spelling() {
        assert_eq!(fmt_float(1.0), "1.0");
        assert_eq!(fmt_float(1023.0 / 1e9), "1.023e-6");
        assert_eq!(fmt_float(0.25), "0.25");
        assert_eq!(fmt_float(f64::INFINITY), "+Inf");
        assert_eq!(fmt_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(fmt_float(f64::NAN), "NaN");
    }
}
