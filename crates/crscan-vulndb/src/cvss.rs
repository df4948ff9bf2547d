//! CVSS base scores computed from vector strings, for versions 2.0, 3.0, 3.1 and 4.0.
//!
//! Feeds give vectors more often than scores, and when they give both the score is
//! sometimes stale; the severity of a finding is therefore computed here from the
//! vector, following the specifications:
//! - v2: <https://www.first.org/cvss/v2/guide> section 3.2.1;
//! - v3.0: <https://www.first.org/cvss/v3.0/specification-document> section 8;
//! - v3.1: <https://www.first.org/cvss/v3.1/specification-document> section 7 and
//!   appendix A (the `Roundup` function);
//! - v4.0: <https://www.first.org/cvss/v4.0/specification-document> sections 8.2 and
//!   8.3 (MacroVectors, the lookup table of their scores, and interpolation by
//!   severity distance). The MacroVector table is a fact of the specification,
//!   published as data with the FIRST calculator; it is reproduced as data below.
//!
//! Only base metrics are scored. Temporal/threat and environmental metrics present in a
//! vector are parsed where the specification folds them into the base equations (v4's
//! `E`, `CR`/`IR`/`AR` and modified metrics) and ignored otherwise.

use std::collections::HashMap;

pub use crscan_model::{CvssScore, CvssVersion};

/// Why a vector cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvssError {
    #[error("CVSS vector {0:?} has an unknown version prefix")]
    UnknownVersion(String),
    #[error("CVSS vector {vector:?} has a malformed or unknown metric {metric:?}")]
    BadMetric { vector: String, metric: String },
    #[error("CVSS vector {vector:?} lacks the base metric {metric}")]
    MissingMetric {
        vector: String,
        metric: &'static str,
    },
}

/// Scores a vector of any supported version, recognised by its prefix
/// (`CVSS:4.0/`, `CVSS:3.1/`, `CVSS:3.0/`; a v2 vector has no prefix, or
/// `CVSS:2.0/`, and may be wrapped in parentheses).
pub fn score(vector: &str) -> Result<CvssScore, CvssError> {
    let vector = vector.trim();
    let (version, body) = if let Some(body) = vector.strip_prefix("CVSS:4.0/") {
        (CvssVersion::V4, body)
    } else if let Some(body) = vector.strip_prefix("CVSS:3.1/") {
        (CvssVersion::V3_1, body)
    } else if let Some(body) = vector.strip_prefix("CVSS:3.0/") {
        (CvssVersion::V3_0, body)
    } else if let Some(body) = vector.strip_prefix("CVSS:2.0/") {
        (CvssVersion::V2, body)
    } else if vector.starts_with("CVSS:") {
        return Err(CvssError::UnknownVersion(vector.to_owned()));
    } else {
        (
            CvssVersion::V2,
            vector.trim_start_matches('(').trim_end_matches(')'),
        )
    };
    let metrics = parse_metrics(vector, body)?;
    let score = match version {
        CvssVersion::V2 => score_v2(vector, &metrics)?,
        CvssVersion::V3_0 | CvssVersion::V3_1 => score_v3(vector, version, &metrics)?,
        CvssVersion::V4 => score_v4(vector, &metrics)?,
    };
    Ok(CvssScore {
        version,
        vector: vector.to_owned(),
        score,
    })
}

/// Splits `A:B/C:D` into a map, rejecting malformed or repeated metrics.
fn parse_metrics<'a>(vector: &str, body: &'a str) -> Result<HashMap<&'a str, &'a str>, CvssError> {
    let mut metrics = HashMap::new();
    for part in body.split('/').filter(|part| !part.is_empty()) {
        let bad = || CvssError::BadMetric {
            vector: vector.to_owned(),
            metric: part.to_owned(),
        };
        let (name, value) = part.split_once(':').ok_or_else(bad)?;
        if name.is_empty() || value.is_empty() || metrics.insert(name, value).is_some() {
            return Err(bad());
        }
    }
    Ok(metrics)
}

/// Looks a metric value up in its table of weights.
fn weight(
    vector: &str,
    metrics: &HashMap<&str, &str>,
    metric: &'static str,
    table: &[(&str, f64)],
) -> Result<f64, CvssError> {
    let value = metrics.get(metric).ok_or(CvssError::MissingMetric {
        vector: vector.to_owned(),
        metric,
    })?;
    table
        .iter()
        .find(|(name, _)| name == value)
        .map(|(_, weight)| *weight)
        .ok_or_else(|| CvssError::BadMetric {
            vector: vector.to_owned(),
            metric: format!("{metric}:{value}"),
        })
}

/// Rounds to one decimal, half away from zero, after removing floating-point noise.
fn round1(value: f64) -> f64 {
    ((value * 10.0) + 1e-9).round() / 10.0
}

/// CVSS v2 base equation (v2 guide, section 3.2.1).
fn score_v2(vector: &str, metrics: &HashMap<&str, &str>) -> Result<f64, CvssError> {
    const IMPACT: &[(&str, f64)] = &[("N", 0.0), ("P", 0.275), ("C", 0.660)];
    let access_vector = weight(
        vector,
        metrics,
        "AV",
        &[("L", 0.395), ("A", 0.646), ("N", 1.0)],
    )?;
    let access_complexity = weight(
        vector,
        metrics,
        "AC",
        &[("H", 0.35), ("M", 0.61), ("L", 0.71)],
    )?;
    let authentication = weight(
        vector,
        metrics,
        "Au",
        &[("M", 0.45), ("S", 0.56), ("N", 0.704)],
    )?;
    let confidentiality = weight(vector, metrics, "C", IMPACT)?;
    let integrity = weight(vector, metrics, "I", IMPACT)?;
    let availability = weight(vector, metrics, "A", IMPACT)?;
    let impact = 10.41 * (1.0 - (1.0 - confidentiality) * (1.0 - integrity) * (1.0 - availability));
    let exploitability = 20.0 * access_vector * access_complexity * authentication;
    let f_impact = if impact == 0.0 { 0.0 } else { 1.176 };
    Ok(round1(((0.6 * impact) + (0.4 * exploitability) - 1.5) * f_impact).max(0.0))
}

/// The v3.1 `Roundup`: the smallest number with one decimal that is equal to or
/// higher than its input, computed on integers to avoid floating-point surprises
/// (v3.1 specification, appendix A).
fn roundup_v31(value: f64) -> f64 {
    let int_input = (value * 100_000.0).round() as i64;
    if int_input % 10_000 == 0 {
        int_input as f64 / 100_000.0
    } else {
        ((int_input / 10_000) + 1) as f64 / 10.0
    }
}

/// The v3.0 `Roundup`: the ceiling at one decimal.
fn roundup_v30(value: f64) -> f64 {
    (value * 10.0).ceil() / 10.0
}

/// CVSS v3.x base equations (v3.1 specification, section 7.1).
fn score_v3(
    vector: &str,
    version: CvssVersion,
    metrics: &HashMap<&str, &str>,
) -> Result<f64, CvssError> {
    const IMPACT: &[(&str, f64)] = &[("H", 0.56), ("L", 0.22), ("N", 0.0)];
    let changed = match metrics.get("S") {
        Some(&"U") => false,
        Some(&"C") => true,
        Some(other) => {
            return Err(CvssError::BadMetric {
                vector: vector.to_owned(),
                metric: format!("S:{other}"),
            });
        }
        None => {
            return Err(CvssError::MissingMetric {
                vector: vector.to_owned(),
                metric: "S",
            });
        }
    };
    let attack_vector = weight(
        vector,
        metrics,
        "AV",
        &[("N", 0.85), ("A", 0.62), ("L", 0.55), ("P", 0.2)],
    )?;
    let attack_complexity = weight(vector, metrics, "AC", &[("L", 0.77), ("H", 0.44)])?;
    let privileges = if changed {
        weight(
            vector,
            metrics,
            "PR",
            &[("N", 0.85), ("L", 0.68), ("H", 0.5)],
        )?
    } else {
        weight(
            vector,
            metrics,
            "PR",
            &[("N", 0.85), ("L", 0.62), ("H", 0.27)],
        )?
    };
    let user_interaction = weight(vector, metrics, "UI", &[("N", 0.85), ("R", 0.62)])?;
    let confidentiality = weight(vector, metrics, "C", IMPACT)?;
    let integrity = weight(vector, metrics, "I", IMPACT)?;
    let availability = weight(vector, metrics, "A", IMPACT)?;
    let iss = 1.0 - ((1.0 - confidentiality) * (1.0 - integrity) * (1.0 - availability));
    let impact = if changed {
        7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
    } else {
        6.42 * iss
    };
    let exploitability = 8.22 * attack_vector * attack_complexity * privileges * user_interaction;
    if impact <= 0.0 {
        return Ok(0.0);
    }
    let raw = if changed {
        (1.08 * (impact + exploitability)).min(10.0)
    } else {
        (impact + exploitability).min(10.0)
    };
    Ok(match version {
        CvssVersion::V3_0 => roundup_v30(raw),
        _ => roundup_v31(raw),
    })
}

/// Scores of the 270 CVSS v4.0 MacroVectors (EQ1…EQ6 digits), from the specification's
/// published lookup table.
const V4_MACROVECTOR_SCORES: &[(&str, f64)] = &[
    ("000000", 10.0),
    ("000001", 9.9),
    ("000010", 9.8),
    ("000011", 9.5),
    ("000020", 9.5),
    ("000021", 9.2),
    ("000100", 10.0),
    ("000101", 9.6),
    ("000110", 9.3),
    ("000111", 8.7),
    ("000120", 9.1),
    ("000121", 8.1),
    ("000200", 9.3),
    ("000201", 9.0),
    ("000210", 8.9),
    ("000211", 8.0),
    ("000220", 8.1),
    ("000221", 6.8),
    ("001000", 9.8),
    ("001001", 9.5),
    ("001010", 9.5),
    ("001011", 9.2),
    ("001020", 9.0),
    ("001021", 8.4),
    ("001100", 9.3),
    ("001101", 9.2),
    ("001110", 8.9),
    ("001111", 8.1),
    ("001120", 8.1),
    ("001121", 6.5),
    ("001200", 8.8),
    ("001201", 8.0),
    ("001210", 7.8),
    ("001211", 7.0),
    ("001220", 6.9),
    ("001221", 4.8),
    ("002001", 9.2),
    ("002011", 8.2),
    ("002021", 7.2),
    ("002101", 7.9),
    ("002111", 6.9),
    ("002121", 5.0),
    ("002201", 6.9),
    ("002211", 5.5),
    ("002221", 2.7),
    ("010000", 9.9),
    ("010001", 9.7),
    ("010010", 9.5),
    ("010011", 9.2),
    ("010020", 9.2),
    ("010021", 8.5),
    ("010100", 9.5),
    ("010101", 9.1),
    ("010110", 9.0),
    ("010111", 8.3),
    ("010120", 8.4),
    ("010121", 7.1),
    ("010200", 9.2),
    ("010201", 8.1),
    ("010210", 8.2),
    ("010211", 7.1),
    ("010220", 7.2),
    ("010221", 5.3),
    ("011000", 9.5),
    ("011001", 9.3),
    ("011010", 9.2),
    ("011011", 8.5),
    ("011020", 8.5),
    ("011021", 7.3),
    ("011100", 9.2),
    ("011101", 8.2),
    ("011110", 8.0),
    ("011111", 7.2),
    ("011120", 7.0),
    ("011121", 5.9),
    ("011200", 8.4),
    ("011201", 7.0),
    ("011210", 7.1),
    ("011211", 5.2),
    ("011220", 5.0),
    ("011221", 3.0),
    ("012001", 8.6),
    ("012011", 7.5),
    ("012021", 5.2),
    ("012101", 7.1),
    ("012111", 5.2),
    ("012121", 2.9),
    ("012201", 6.3),
    ("012211", 2.9),
    ("012221", 1.7),
    ("100000", 9.8),
    ("100001", 9.5),
    ("100010", 9.4),
    ("100011", 8.7),
    ("100020", 9.1),
    ("100021", 8.1),
    ("100100", 9.4),
    ("100101", 8.9),
    ("100110", 8.6),
    ("100111", 7.4),
    ("100120", 7.7),
    ("100121", 6.4),
    ("100200", 8.7),
    ("100201", 7.5),
    ("100210", 7.4),
    ("100211", 6.3),
    ("100220", 6.3),
    ("100221", 4.9),
    ("101000", 9.4),
    ("101001", 8.9),
    ("101010", 8.8),
    ("101011", 7.7),
    ("101020", 7.6),
    ("101021", 6.7),
    ("101100", 8.6),
    ("101101", 7.6),
    ("101110", 7.4),
    ("101111", 5.8),
    ("101120", 5.9),
    ("101121", 5.0),
    ("101200", 7.2),
    ("101201", 5.7),
    ("101210", 5.7),
    ("101211", 5.2),
    ("101220", 5.2),
    ("101221", 2.5),
    ("102001", 8.3),
    ("102011", 7.0),
    ("102021", 5.4),
    ("102101", 6.5),
    ("102111", 5.8),
    ("102121", 2.6),
    ("102201", 5.3),
    ("102211", 2.1),
    ("102221", 1.3),
    ("110000", 9.5),
    ("110001", 9.0),
    ("110010", 8.8),
    ("110011", 7.6),
    ("110020", 7.6),
    ("110021", 7.0),
    ("110100", 9.0),
    ("110101", 7.7),
    ("110110", 7.5),
    ("110111", 6.2),
    ("110120", 6.1),
    ("110121", 5.3),
    ("110200", 7.7),
    ("110201", 6.6),
    ("110210", 6.8),
    ("110211", 5.9),
    ("110220", 5.2),
    ("110221", 3.0),
    ("111000", 8.9),
    ("111001", 7.8),
    ("111010", 7.6),
    ("111011", 6.7),
    ("111020", 6.2),
    ("111021", 5.8),
    ("111100", 7.4),
    ("111101", 5.9),
    ("111110", 5.7),
    ("111111", 5.7),
    ("111120", 4.7),
    ("111121", 2.3),
    ("111200", 6.1),
    ("111201", 5.2),
    ("111210", 5.7),
    ("111211", 2.9),
    ("111220", 2.4),
    ("111221", 1.6),
    ("112001", 7.1),
    ("112011", 5.9),
    ("112021", 3.0),
    ("112101", 5.8),
    ("112111", 2.6),
    ("112121", 1.5),
    ("112201", 2.3),
    ("112211", 1.3),
    ("112221", 0.6),
    ("200000", 9.3),
    ("200001", 8.7),
    ("200010", 8.6),
    ("200011", 7.2),
    ("200020", 7.5),
    ("200021", 5.8),
    ("200100", 8.6),
    ("200101", 7.4),
    ("200110", 7.4),
    ("200111", 6.1),
    ("200120", 5.6),
    ("200121", 3.4),
    ("200200", 7.0),
    ("200201", 5.4),
    ("200210", 5.2),
    ("200211", 4.0),
    ("200220", 4.0),
    ("200221", 2.2),
    ("201000", 8.5),
    ("201001", 7.5),
    ("201010", 7.4),
    ("201011", 5.5),
    ("201020", 6.2),
    ("201021", 5.1),
    ("201100", 7.2),
    ("201101", 5.7),
    ("201110", 5.5),
    ("201111", 4.1),
    ("201120", 4.6),
    ("201121", 1.9),
    ("201200", 5.3),
    ("201201", 3.6),
    ("201210", 3.4),
    ("201211", 1.9),
    ("201220", 1.9),
    ("201221", 0.8),
    ("202001", 6.4),
    ("202011", 5.1),
    ("202021", 2.0),
    ("202101", 4.7),
    ("202111", 2.1),
    ("202121", 1.1),
    ("202201", 2.4),
    ("202211", 0.9),
    ("202221", 0.4),
    ("210000", 8.8),
    ("210001", 7.5),
    ("210010", 7.3),
    ("210011", 5.3),
    ("210020", 6.0),
    ("210021", 5.0),
    ("210100", 7.3),
    ("210101", 5.5),
    ("210110", 5.9),
    ("210111", 4.0),
    ("210120", 4.1),
    ("210121", 2.0),
    ("210200", 5.4),
    ("210201", 4.3),
    ("210210", 4.5),
    ("210211", 2.2),
    ("210220", 2.0),
    ("210221", 1.1),
    ("211000", 7.5),
    ("211001", 5.5),
    ("211010", 5.8),
    ("211011", 4.5),
    ("211020", 4.0),
    ("211021", 2.1),
    ("211100", 6.1),
    ("211101", 5.1),
    ("211110", 4.8),
    ("211111", 1.8),
    ("211120", 2.0),
    ("211121", 0.9),
    ("211200", 4.6),
    ("211201", 1.8),
    ("211210", 1.7),
    ("211211", 0.7),
    ("211220", 0.8),
    ("211221", 0.2),
    ("212001", 5.3),
    ("212011", 2.4),
    ("212021", 1.4),
    ("212101", 2.4),
    ("212111", 1.2),
    ("212121", 0.5),
    ("212201", 1.0),
    ("212211", 0.3),
    ("212221", 0.1),
];

/// The score of a MacroVector given as its six EQ levels; `None` when the
/// combination does not exist (the level after the lowest one).
fn v4_macrovector_score(levels: [u8; 6]) -> Option<f64> {
    let mut key = [0u8; 6];
    for (slot, level) in key.iter_mut().zip(levels) {
        *slot = b'0' + level;
    }
    let key = std::str::from_utf8(&key).ok()?;
    V4_MACROVECTOR_SCORES
        .iter()
        .find(|(vector, _)| *vector == key)
        .map(|(_, score)| *score)
}

/// The effective v4 metric values used by the equations, after defaults (threat `E`
/// not defined counts as `A`; requirements not defined count as `H`) and modified
/// metrics.
struct V4Metrics {
    values: HashMap<&'static str, char>,
}

impl V4Metrics {
    fn get(&self, metric: &str) -> char {
        self.values.get(metric).copied().unwrap_or('X')
    }
}

/// Allowed values of each v4 base metric.
const V4_BASE: &[(&str, &str)] = &[
    ("AV", "NALP"),
    ("AC", "LH"),
    ("AT", "NP"),
    ("PR", "NLH"),
    ("UI", "NPA"),
    ("VC", "HLN"),
    ("VI", "HLN"),
    ("VA", "HLN"),
    ("SC", "HLN"),
    ("SI", "HLN"),
    ("SA", "HLN"),
];

fn v4_effective(vector: &str, metrics: &HashMap<&str, &str>) -> Result<V4Metrics, CvssError> {
    let mut values: HashMap<&'static str, char> = HashMap::new();
    for (metric, allowed) in V4_BASE {
        let value = metrics.get(metric).ok_or(CvssError::MissingMetric {
            vector: vector.to_owned(),
            metric,
        })?;
        let mut chars = value.chars();
        let (Some(letter), None) = (chars.next(), chars.next()) else {
            return Err(CvssError::BadMetric {
                vector: vector.to_owned(),
                metric: format!("{metric}:{value}"),
            });
        };
        if !allowed.contains(letter) {
            return Err(CvssError::BadMetric {
                vector: vector.to_owned(),
                metric: format!("{metric}:{value}"),
            });
        }
        values.insert(metric, letter);
    }
    // Modified base metrics replace the base value when defined (`MSI:S`/`MSA:S` add
    // the "safety" level that base metrics cannot express).
    for (metric, _) in V4_BASE {
        let modified = format!("M{metric}");
        if let Some(value) = metrics.get(modified.as_str())
            && let Some(letter) = value.chars().next().filter(|letter| *letter != 'X')
        {
            values.insert(metric, letter);
        }
    }
    let threat = metrics
        .get("E")
        .and_then(|value| value.chars().next())
        .filter(|letter| *letter != 'X')
        .unwrap_or('A');
    values.insert("E", threat);
    for requirement in ["CR", "IR", "AR"] {
        let value = metrics
            .get(requirement)
            .and_then(|value| value.chars().next())
            .filter(|letter| *letter != 'X')
            .unwrap_or('H');
        values.insert(requirement, value);
    }
    Ok(V4Metrics { values })
}

/// The severity level (distance from the most severe value, in steps of 0.1) of a
/// v4 metric value.
fn v4_level(metric: &str, value: char) -> f64 {
    let steps = match (metric, value) {
        ("AV", 'N') | ("PR", 'N') | ("UI", 'N') | ("AC", 'L') | ("AT", 'N') => 0,
        ("AV", 'A') | ("PR", 'L') | ("UI", 'P') | ("AC", 'H') | ("AT", 'P') => 1,
        ("AV", 'L') | ("PR", 'H') | ("UI", 'A') => 2,
        ("AV", 'P') => 3,
        ("VC" | "VI" | "VA", 'H') => 0,
        ("VC" | "VI" | "VA", 'L') => 1,
        ("VC" | "VI" | "VA", 'N') => 2,
        ("SI" | "SA", 'S') => 0,
        ("SC" | "SI" | "SA", 'H') => 1,
        ("SC" | "SI" | "SA", 'L') => 2,
        ("SC" | "SI" | "SA", 'N') => 3,
        ("CR" | "IR" | "AR", 'H') => 0,
        ("CR" | "IR" | "AR", 'M') => 1,
        ("CR" | "IR" | "AR", 'L') => 2,
        ("E", 'A') => 0,
        ("E", 'P') => 1,
        ("E", 'U') => 2,
        _ => 0,
    };
    f64::from(steps) * 0.1
}

/// Highest-severity vectors of each EQ level, as metric strings (specification
/// section 8.3, "max vectors"); EQ3 and EQ6 are indexed together.
fn v4_max_vectors(eq: usize, level: u8, eq6: u8) -> &'static [&'static str] {
    match (eq, level, eq6) {
        (1, 0, _) => &["AV:N/PR:N/UI:N"],
        (1, 1, _) => &["AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"],
        (1, 2, _) => &["AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"],
        (2, 0, _) => &["AC:L/AT:N"],
        (2, 1, _) => &["AC:H/AT:N", "AC:L/AT:P"],
        (3, 0, 0) => &["VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"],
        (3, 0, 1) => &[
            "VC:H/VI:H/VA:L/CR:M/IR:M/AR:H",
            "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M",
        ],
        (3, 1, 0) => &[
            "VC:L/VI:H/VA:H/CR:H/IR:H/AR:H",
            "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H",
        ],
        (3, 1, 1) => &[
            "VC:L/VI:H/VA:L/CR:H/IR:M/AR:H",
            "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M",
            "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M",
            "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H",
            "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M",
        ],
        (3, 2, 1) => &["VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"],
        (4, 0, _) => &["SC:H/SI:S/SA:S"],
        (4, 1, _) => &["SC:H/SI:H/SA:H"],
        (4, 2, _) => &["SC:L/SI:L/SA:L"],
        (5, 0, _) => &["E:A"],
        (5, 1, _) => &["E:P"],
        (5, 2, _) => &["E:U"],
        _ => &[],
    }
}

/// Maximal severity distance within each EQ level, in steps (specification
/// section 8.3).
fn v4_max_severity(eq: usize, level: u8, eq6: u8) -> f64 {
    let steps = match (eq, level, eq6) {
        (1, 0, _) => 1,
        (1, 1, _) => 4,
        (1, 2, _) => 5,
        (2, 0, _) => 1,
        (2, 1, _) => 2,
        (3, 0, 0) => 7,
        (3, 0, 1) => 6,
        (3, 1, _) => 8,
        (3, 2, _) => 10,
        (4, 0, _) => 6,
        (4, 1, _) => 5,
        (4, 2, _) => 4,
        _ => 1,
    };
    f64::from(steps) * 0.1
}

/// CVSS v4.0 scoring (specification sections 8.2 and 8.3).
fn score_v4(vector: &str, metrics: &HashMap<&str, &str>) -> Result<f64, CvssError> {
    let m = v4_effective(vector, metrics)?;
    let is = |metric: &str, value: char| m.get(metric) == value;

    if ["VC", "VI", "VA", "SC", "SI", "SA"]
        .iter()
        .all(|metric| is(metric, 'N'))
    {
        return Ok(0.0);
    }

    let eq1 = if is("AV", 'N') && is("PR", 'N') && is("UI", 'N') {
        0
    } else if (is("AV", 'N') || is("PR", 'N') || is("UI", 'N')) && !is("AV", 'P') {
        1
    } else {
        2
    };
    let eq2 = if is("AC", 'L') && is("AT", 'N') { 0 } else { 1 };
    let eq3 = if is("VC", 'H') && is("VI", 'H') {
        0
    } else if is("VC", 'H') || is("VI", 'H') || is("VA", 'H') {
        1
    } else {
        2
    };
    let eq4 = if is("SI", 'S') || is("SA", 'S') {
        0
    } else if is("SC", 'H') || is("SI", 'H') || is("SA", 'H') {
        1
    } else {
        2
    };
    let eq5 = match m.get("E") {
        'P' => 1,
        'U' => 2,
        _ => 0,
    };
    let eq6 = if (is("CR", 'H') && is("VC", 'H'))
        || (is("IR", 'H') && is("VI", 'H'))
        || (is("AR", 'H') && is("VA", 'H'))
    {
        0
    } else {
        1
    };
    let levels = [eq1, eq2, eq3, eq4, eq5, eq6];
    let value = v4_macrovector_score(levels).ok_or_else(|| CvssError::BadMetric {
        vector: vector.to_owned(),
        metric: format!("macrovector {levels:?}"),
    })?;

    let lower = |index: usize| {
        let mut next = levels;
        next[index] += 1;
        v4_macrovector_score(next)
    };
    let lower_eq1 = lower(0);
    let lower_eq2 = lower(1);
    let lower_eq3eq6 = match (eq3, eq6) {
        (0, 0) => {
            let left = v4_macrovector_score([eq1, eq2, eq3, eq4, eq5, eq6 + 1]);
            let right = v4_macrovector_score([eq1, eq2, eq3 + 1, eq4, eq5, eq6]);
            match (left, right) {
                (Some(left), Some(right)) => Some(left.max(right)),
                (left, right) => left.or(right),
            }
        }
        (1, 0) => v4_macrovector_score([eq1, eq2, eq3, eq4, eq5, eq6 + 1]),
        _ => v4_macrovector_score([eq1, eq2, eq3 + 1, eq4, eq5, eq6]),
    };
    let lower_eq4 = lower(3);
    let lower_eq5 = lower(4);

    // Find the first max vector of this MacroVector that the vector does not exceed;
    // distances are measured from it.
    let metric_names_eq1 = ["AV", "PR", "UI"];
    let metric_names_eq2 = ["AC", "AT"];
    let metric_names_eq3eq6 = ["VC", "VI", "VA", "CR", "IR", "AR"];
    let metric_names_eq4 = ["SC", "SI", "SA"];
    let mut distances: Option<[f64; 4]> = None;
    'search: for max1 in v4_max_vectors(1, eq1, 0) {
        for max2 in v4_max_vectors(2, eq2, 0) {
            for max3 in v4_max_vectors(3, eq3, eq6) {
                for max4 in v4_max_vectors(4, eq4, 0) {
                    let candidate: HashMap<&str, char> = [*max1, *max2, *max3, *max4]
                        .iter()
                        .flat_map(|part| part.split('/'))
                        .filter_map(|pair| {
                            let (name, value) = pair.split_once(':')?;
                            Some((name, value.chars().next()?))
                        })
                        .collect();
                    let distance = |metric: &str| {
                        let max_value = candidate.get(metric).copied().unwrap_or('X');
                        v4_level(metric, m.get(metric)) - v4_level(metric, max_value)
                    };
                    let all_names = metric_names_eq1
                        .iter()
                        .chain(&metric_names_eq2)
                        .chain(&metric_names_eq3eq6)
                        .chain(&metric_names_eq4);
                    if all_names.clone().any(|metric| distance(metric) < -1e-9) {
                        continue;
                    }
                    let sum = |names: &[&str]| names.iter().map(|name| distance(name)).sum::<f64>();
                    distances = Some([
                        sum(&metric_names_eq1),
                        sum(&metric_names_eq2),
                        sum(&metric_names_eq3eq6),
                        sum(&metric_names_eq4),
                    ]);
                    break 'search;
                }
            }
        }
    }
    let distances = distances.unwrap_or([0.0; 4]);

    let parts = [
        (lower_eq1, distances[0], v4_max_severity(1, eq1, 0)),
        (lower_eq2, distances[1], v4_max_severity(2, eq2, 0)),
        (lower_eq3eq6, distances[2], v4_max_severity(3, eq3, eq6)),
        (lower_eq4, distances[3], v4_max_severity(4, eq4, 0)),
        (lower_eq5, 0.0, v4_max_severity(5, eq5, 0)),
    ];
    let mut existing = 0u32;
    let mut normalized_sum = 0.0;
    for (lower_score, distance, max_severity) in parts {
        if let Some(lower_score) = lower_score {
            existing += 1;
            let available = value - lower_score;
            normalized_sum += available * (distance / max_severity);
        }
    }
    let mean = if existing == 0 {
        0.0
    } else {
        normalized_sum / f64::from(existing)
    };
    Ok(round1((value - mean).clamp(0.0, 10.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(vector: &str, expected: f64) {
        let scored = score(vector).unwrap();
        assert!(
            (scored.score - expected).abs() < 1e-9,
            "{vector}: expected {expected}, got {}",
            scored.score
        );
    }

    /// Examples from the CVSS v2 guide, section 3.3.
    #[test]
    fn v2_specification_examples() {
        check("AV:N/AC:L/Au:N/C:N/I:N/A:C", 7.8);
        check("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0);
        check("AV:L/AC:H/Au:N/C:C/I:C/A:C", 6.2);
        check("(AV:N/AC:L/Au:N/C:P/I:P/A:P)", 7.5);
    }

    /// Examples from the CVSS v3.1 specification's examples document.
    #[test]
    fn v3_specification_examples() {
        check("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1);
        check("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4);
        check("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1);
        check("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9);
        check("CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L", 4.2);
        check("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8);
        check("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 7.8);
        check("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5);
        check("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8);
        check("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N", 6.8);
        check("CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 6.8);
        check("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N", 5.8);
        check("CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H", 9.3);
        check("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0);
        check("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0);
    }

    /// Examples of the CVSS v4.0 examples document (first.org/cvss/v4-0/examples) and
    /// the calculator's boundary cases.
    #[test]
    fn v4_examples() {
        check(
            "CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            7.3,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            7.7,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U",
            5.2,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N",
            8.3,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N/CR:H/IR:L/AR:L/MAV:N/MAC:H/MVC:H/MVI:L/MVA:L",
            8.1,
        );
        check(
            "CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N",
            4.6,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:H/SI:H/SA:H",
            7.9,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U",
            9.1,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MVI:L/MSA:S",
            9.8,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            9.3,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
            6.9,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
            10.0,
        );
        check(
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
            0.0,
        );
    }

    #[test]
    fn rejects_bad_vectors() {
        assert!(score("CVSS:3.1/AV:N/AC:L").is_err());
        assert!(score("CVSS:3.1/AV:Q/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H").is_err());
        assert!(score("CVSS:9.9/AV:N").is_err());
        assert!(score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N").is_err());
    }
}
