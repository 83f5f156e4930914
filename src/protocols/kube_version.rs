//! Kubernetes API server versions, as far as podgrace's choices depend on them.

use std::fmt;
use std::str::FromStr;

/// A Kubernetes `major.minor` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl KubeVersion {
    /// Creates a version.
    pub const fn new(major: u32, minor: u32) -> Self {
        KubeVersion { major, minor }
    }

    /// The native `preStop.sleep` handler is on by default (beta since 1.30, GA in 1.34).
    /// (`sleep.seconds: 0` needs 1.33; podgrace never writes it: a zero sleep is no hook.)
    pub fn has_native_sleep(self) -> bool {
        self >= KubeVersion::new(1, 30)
    }

    /// From the API server's `/version` fields; providers append `+` or other suffixes to the
    /// minor version (`"30+"` on GKE and EKS).
    pub fn from_parts(major: &str, minor: &str) -> Option<Self> {
        let digits = |s: &str| -> Option<u32> {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            s[..end].parse().ok()
        };
        Some(KubeVersion::new(digits(major)?, digits(minor)?))
    }
}

/// Error for an unparsable version string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a Kubernetes version like 1.30 or v1.30.2, got {0:?}")]
pub struct KubeVersionError(String);

impl FromStr for KubeVersion {
    type Err = KubeVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        match (parts.next(), parts.next()) {
            (Some(major), Some(minor)) => KubeVersion::from_parts(major, minor),
            _ => None,
        }
        .ok_or_else(|| KubeVersionError(s.to_owned()))
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!("1.30".parse(), Ok(KubeVersion::new(1, 30)));
        assert_eq!("v1.36.2".parse(), Ok(KubeVersion::new(1, 36)));
        assert_eq!(
            KubeVersion::from_parts("1", "29+"),
            Some(KubeVersion::new(1, 29))
        );
        assert!("latest".parse::<KubeVersion>().is_err());
        assert!("1".parse::<KubeVersion>().is_err());
    }

    #[test]
    fn feature_gates_follow_the_release_history() {
        assert!(!KubeVersion::new(1, 29).has_native_sleep());
        assert!(KubeVersion::new(1, 30).has_native_sleep());
    }
}
