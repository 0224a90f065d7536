//! Just enough DER to read a certificate's `notAfter` (RFC 5280 4.1): the TBSCertificate's
//! fields up to `validity`, walked by tag and length, nothing decoded that is not needed.
//! Every read is bounds-checked: a malformed certificate yields `None`, never a panic.

/// One tag-length-value: (tag, contents, what follows).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits count the length's bytes (a certificate needs at most 4).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
/// `[0] EXPLICIT Version` (absent in v1 certificates).
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` as unix seconds.
pub(crate) fn not_after(cert: &[u8]) -> Option<i64> {
    let (SEQUENCE, certificate, _) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = tlv(certificate)? else {
        return None;
    };
    if let (VERSION, _, rest) = tlv(tbs)? {
        tbs = rest;
    }
    // serialNumber, signature (AlgorithmIdentifier), issuer (Name).
    for want in [INTEGER, SEQUENCE, SEQUENCE] {
        let (tag, _, rest) = tlv(tbs)?;
        if tag != want {
            return None;
        }
        tbs = rest;
    }
    let (SEQUENCE, validity, _) = tlv(tbs)? else {
        return None;
    };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    time_of(tag, time)
}

/// A DER `UTCTime` (`YYMMDDHHMMSSZ`, 50-99 meaning 19xx) or `GeneralizedTime`
/// (`YYYYMMDDHHMMSSZ`) as unix seconds; RFC 5280 allows no other form.
fn time_of(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let (year, rest) = match tag {
        UTC_TIME => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 10 || !digits(rest) {
        return None;
    }
    let two = |i: usize| rest.get(i..i + 2)?.parse::<i64>().ok();
    let (month, day, hour, minute, second) = (two(0)?, two(2)?, two(4)?, two(6)?, two(8)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`: years counted from March, so the leap day ends a year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_unix_seconds() {
        assert_eq!(time_of(UTC_TIME, b"700101000000Z"), Some(0));
        assert_eq!(time_of(UTC_TIME, b"000229120000Z"), Some(951_825_600));
        assert_eq!(time_of(UTC_TIME, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time_of(UTC_TIME, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(
            time_of(GENERALIZED_TIME, b"20500101000000Z"),
            Some(2_524_608_000)
        );
        for bad in [
            &b"7001010000Z"[..],
            b"701301000000Z",
            b"700101000000",
            b"70010100000aZ",
        ] {
            assert_eq!(time_of(UTC_TIME, bad), None, "{bad:?}");
        }
        assert_eq!(time_of(0x04, b"700101000000Z"), None);
    }

    #[test]
    fn validity_is_found_with_and_without_a_version() {
        // SEQUENCE { SEQUENCE { [0] {INTEGER 2}, INTEGER 1, SEQUENCE {}, SEQUENCE {},
        //   SEQUENCE { UTCTime notBefore, UTCTime notAfter } } }
        let time = |t: &[u8]| [&[UTC_TIME, t.len() as u8][..], t].concat();
        let validity = [time(b"700101000000Z"), time(b"491231235959Z")].concat();
        let fields = [
            &[
                INTEGER,
                1,
                1,
                SEQUENCE,
                0,
                SEQUENCE,
                0,
                SEQUENCE,
                validity.len() as u8,
            ][..],
            &validity,
        ]
        .concat();
        let wrap = |tag: u8, body: &[u8]| [&[tag, body.len() as u8][..], body].concat();
        let v3 = wrap(
            SEQUENCE,
            &wrap(
                SEQUENCE,
                &[&[VERSION, 3, INTEGER, 1, 2][..], &fields].concat(),
            ),
        );
        assert_eq!(not_after(&v3), Some(2_524_607_999));
        let v1 = wrap(SEQUENCE, &wrap(SEQUENCE, &fields));
        assert_eq!(not_after(&v1), Some(2_524_607_999));
        // Cut anywhere, it is refused, never read past its end.
        for n in 0..v3.len() {
            assert_eq!(not_after(&v3[..n]), None, "cut at {n}");
        }
        // A long-form length that claims more than there is.
        assert_eq!(not_after(&[SEQUENCE, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }

    proptest::proptest! {
        /// A certificate is what a hostile server sends: any bytes, or a well-formed one
        /// with bytes flipped, give a date or `None`, never a panic or a read past the end.
        #[test]
        fn any_bytes_are_read_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = not_after(&bytes);
        }

        #[test]
        fn a_certificate_with_a_flipped_byte_is_read_without_panicking(at in 0usize..64, to in proptest::num::u8::ANY) {
            let time = |t: &[u8]| [&[UTC_TIME, t.len() as u8][..], t].concat();
            let validity = [time(b"700101000000Z"), time(b"491231235959Z")].concat();
            let fields = [&[INTEGER, 1, 1, SEQUENCE, 0, SEQUENCE, 0, SEQUENCE, validity.len() as u8][..], &validity].concat();
            let wrap = |tag: u8, body: &[u8]| [&[tag, body.len() as u8][..], body].concat();
            let mut cert = wrap(SEQUENCE, &wrap(SEQUENCE, &fields));
            let i = at % cert.len();
            cert[i] = to;
            let _ = not_after(&cert);
        }
    }
}
