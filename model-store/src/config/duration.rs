//! Go durations as Cortex wrote them ("100ms", "0.5s", "1m30s"): a
//! sequence of decimal numbers, each followed by its unit.

use std::time::Duration;

/// What the user is shown whatever is wrong: the config names the field,
/// and examples say more than the reason would.
const EXAMPLES: &str = "such as 100ms, 0.5s or 1m30s";

/// Why a text is not a duration; each kind holds the text as written and
/// reads the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DurationError {
    /// Nothing but blanks.
    #[error("{0:?} is not a duration ({examples})", examples = EXAMPLES)]
    Empty(String),
    /// Something other than a number where one should be ("fast", "-1s").
    #[error("{0:?} is not a duration ({examples})", examples = EXAMPLES)]
    Number(String),
    /// A number with no unit after it ("10").
    #[error("{0:?} is not a duration ({examples})", examples = EXAMPLES)]
    MissingUnit(String),
    /// A unit Go does not know ("1d").
    #[error("{0:?} is not a duration ({examples})", examples = EXAMPLES)]
    Unit(String),
    /// More than a [`Duration`] holds.
    #[error("{0:?} is not a duration ({examples})", examples = EXAMPLES)]
    TooLong(String),
}

/// Parses a Go duration; units from `ns` to `h`, fractions allowed.
pub(crate) fn go_duration(text: &str) -> Result<Duration, DurationError> {
    let written = || text.to_owned();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Empty(written()));
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit(written()))?;
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::Number(written()))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(DurationError::Unit(written())),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| DurationError::TooLong(written()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_with_their_units() {
        for (text, want) in [
            ("100ms", Duration::from_millis(100)),
            ("0.5s", Duration::from_millis(500)),
            ("1m30s", Duration::from_secs(90)),
            ("2h", Duration::from_secs(7200)),
            ("250us", Duration::from_micros(250)),
            ("3µs", Duration::from_micros(3)),
            ("7ns", Duration::from_nanos(7)),
            (" 1s ", Duration::from_secs(1)),
        ] {
            assert_eq!(go_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn each_kind_of_bad_duration_is_told_apart_and_reads_the_same() {
        let huge = format!("{}h", "9".repeat(30));
        for (text, want) in [
            ("  ", DurationError::Empty("  ".to_owned())),
            ("fast", DurationError::Number("fast".to_owned())),
            ("-1s", DurationError::Number("-1s".to_owned())),
            ("1.2.3s", DurationError::Number("1.2.3s".to_owned())),
            ("10", DurationError::MissingUnit("10".to_owned())),
            ("1m30", DurationError::MissingUnit("1m30".to_owned())),
            ("1d", DurationError::Unit("1d".to_owned())),
            (huge.as_str(), DurationError::TooLong(huge.clone())),
        ] {
            let got = go_duration(text).unwrap_err();
            assert_eq!(got, want, "{text}");
            // The message config errors have always carried.
            assert_eq!(
                got.to_string(),
                format!("{text:?} is not a duration (such as 100ms, 0.5s or 1m30s)")
            );
        }
    }
}
