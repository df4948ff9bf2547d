//! The six severity levels of the Container Registry API
//! (`Vulnerability.Severity` in `yandex/cloud/containerregistry/v1/scanner.proto`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A vulnerability's severity, most severe first in `Ord` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Negligible,
    Undefined,
}

impl Severity {
    /// All levels, most severe first.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Undefined,
    ];

    /// The API's enum name (`CRITICAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Negligible => "NEGLIGIBLE",
            Severity::Undefined => "UNDEFINED",
        }
    }

    /// The enum number in the proto (`SEVERITY_UNSPECIFIED` = 0, CRITICAL = 1, …).
    pub fn proto_number(self) -> i32 {
        match self {
            Severity::Critical => 1,
            Severity::High => 2,
            Severity::Medium => 3,
            Severity::Low => 4,
            Severity::Negligible => 5,
            Severity::Undefined => 6,
        }
    }

    /// The lower-case counter name used in `VulnerabilityStats` (`critical`).
    pub fn counter_name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Negligible => "negligible",
            Severity::Undefined => "undefined",
        }
    }

    /// The level for a CVSS base score, on the CVSS qualitative rating scale:
    /// ≥9.0 CRITICAL, ≥7.0 HIGH, ≥4.0 MEDIUM, >0 LOW; 0.0 ("None") is NEGLIGIBLE.
    pub fn from_cvss_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Negligible
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    /// Accepts the API names in any case (`critical`, `CRITICAL`).
    fn from_str(text: &str) -> Result<Severity, String> {
        let upper = text.trim().to_ascii_uppercase();
        Severity::ALL
            .into_iter()
            .find(|level| level.as_str() == upper)
            .ok_or_else(|| format!("unknown severity {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvss_rating_scale() {
        assert_eq!(Severity::from_cvss_score(9.8), Severity::Critical);
        assert_eq!(Severity::from_cvss_score(9.0), Severity::Critical);
        assert_eq!(Severity::from_cvss_score(8.9), Severity::High);
        assert_eq!(Severity::from_cvss_score(7.0), Severity::High);
        assert_eq!(Severity::from_cvss_score(4.0), Severity::Medium);
        assert_eq!(Severity::from_cvss_score(0.1), Severity::Low);
        assert_eq!(Severity::from_cvss_score(0.0), Severity::Negligible);
    }

    #[test]
    fn parses_any_case() {
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert!("urgent".parse::<Severity>().is_err());
    }
}
