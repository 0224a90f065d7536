//! How durations read to a person (check output, status page): three significant digits in
//! the unit that fits, so 0.4 ms does not print as `0.000 s` and 75 s not as `75000 ms`.
//! A leaf: it imports nothing of pathwatch.

/// `s` seconds as `420 µs`, `4.2 ms`, `250 ms`, `2.50 s`, `41.2 s` or `1m 15s`.
pub(crate) fn seconds(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".into();
    }
    match s {
        s if s < 0.001 => format!("{:.0} µs", s * 1e6),
        s if s < 0.01 => format!("{:.1} ms", s * 1e3),
        s if s < 1.0 => format!("{:.0} ms", s * 1e3),
        s if s < 10.0 => format!("{s:.2} s"),
        s if s < 60.0 => format!("{s:.1} s"),
        s => {
            let whole = s.round() as u64;
            format!("{}m {}s", whole / 60, whole % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn every_range_reads_in_its_own_unit() {
        assert_eq!(seconds(0.000_42), "420 µs");
        assert_eq!(seconds(0.004_2), "4.2 ms");
        assert_eq!(seconds(0.25), "250 ms");
        assert_eq!(seconds(2.5), "2.50 s");
        assert_eq!(seconds(41.23), "41.2 s");
        assert_eq!(seconds(75.0), "1m 15s");
        assert_eq!(seconds(f64::NAN), "-");
    }
}
