//! Whole-second durations as they appear in policies and annotations.
//!
//! Every duration podgrace reads ends up in `terminationGracePeriodSeconds` arithmetic, so a typo
//! such as `300000` or `-5` must be refused where it is written, with a message that says what is
//! accepted, rather than turn into a pod that takes days to die.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Upper bound for any duration in a policy: one hour. Longer drains are almost certainly a mistake.
pub const MAX_SECONDS: u32 = 3600;

/// A duration in whole seconds, `0..=3600`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Seconds(u32);

/// Why a value is not a valid [`Seconds`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected whole seconds between 0 and {MAX_SECONDS}, got {0}")]
pub struct SecondsError(pub String);

impl Seconds {
    /// A duration known to be in range at compile time (built-in defaults).
    pub const fn new_const(value: u32) -> Self {
        assert!(value <= MAX_SECONDS);
        Seconds(value)
    }

    /// The number of seconds.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Seconds {
    type Error = SecondsError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match u32::try_from(value) {
            Ok(v) if v <= MAX_SECONDS => Ok(Seconds(v)),
            _ => Err(SecondsError(value.to_string())),
        }
    }
}

impl FromStr for Seconds {
    type Err = SecondsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        trimmed
            .parse::<i64>()
            .map_err(|_| SecondsError(format!("{s:?}")))
            .and_then(Seconds::try_from)
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;

        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "whole seconds between 0 and {MAX_SECONDS}")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Seconds::try_from(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                Seconds::try_from(v).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Err(E::custom(SecondsError(v.to_string())))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                Err(E::custom(SecondsError(format!("{v:?}"))))
            }
        }

        deserializer.deserialize_any(SecondsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_range() {
        assert_eq!("0".parse::<Seconds>().unwrap().get(), 0);
        assert_eq!(" 3600 ".parse::<Seconds>().unwrap().get(), 3600);
    }

    #[test]
    fn refuses_negative_absurd_and_non_numbers_with_the_range_in_the_message() {
        for bad in ["-1", "3601", "30s", "", "1e3", "99999999999999999999"] {
            let err = bad.parse::<Seconds>().unwrap_err().to_string();
            assert!(err.contains("between 0 and 3600"), "{bad}: {err}");
        }
    }

    #[test]
    fn yaml_errors_name_the_value() {
        let err = crate::protocols::yaml::from_str::<Seconds>("-5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("got -5"), "{err}");
        let err = crate::protocols::yaml::from_str::<Seconds>("\"30s\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("got \"30s\""), "{err}");
        let err = crate::protocols::yaml::from_str::<Seconds>("2.5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("got 2.5"), "{err}");
    }
}
