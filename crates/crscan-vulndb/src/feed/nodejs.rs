//! Node Security WG advisories (<https://github.com/nodejs/security-wg/tree/main/vuln/npm>):
//! pre-OSV JSON records whose affected versions are an npm semver range
//! (`>=4.17.15 <4.17.19`, `<=1.2.0 || >=2.0.0 <2.1.1`, `^1.2.0`, `*`).
//!
//! Each `||` alternative becomes one OSV `SEMVER` range: a lower bound becomes
//! `introduced`, `<` becomes `fixed`, `<=` becomes `last_affected`, an exact version
//! goes to `versions`. `>X` becomes `introduced` of the smallest version above `X`
//! (`X` with its patch incremented and a `-0` pre-release), which is exact for
//! SemVer precedence.

use serde::Deserialize;

use crate::advisory::{Advisory, Affected, Event, FeedKind, Range, RangeKind, SeverityStatement};
use crate::feed::RecordError;

#[derive(Deserialize)]
struct WireRecord {
    id: Option<serde_json::Value>,
    title: Option<String>,
    overview: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    module_name: Option<String>,
    #[serde(default)]
    cves: Option<Vec<String>>,
    vulnerable_versions: Option<String>,
    #[serde(default)]
    references: Option<serde_json::Value>,
    #[serde(default)]
    cvss_vector: Option<String>,
}

/// Parses one record.
pub fn parse(bytes: &[u8]) -> Result<Advisory, RecordError> {
    let wire: WireRecord =
        serde_json::from_slice(bytes).map_err(|error| RecordError::Syntax(error.to_string()))?;
    let number = match wire.id {
        Some(serde_json::Value::Number(number)) => number.to_string(),
        Some(serde_json::Value::String(text)) if !text.is_empty() => text,
        _ => return Err(RecordError::Missing("id")),
    };
    let module = wire
        .module_name
        .filter(|name| !name.trim().is_empty())
        .ok_or(RecordError::Missing("module_name"))?;
    let vulnerable = wire
        .vulnerable_versions
        .filter(|range| !range.trim().is_empty())
        .ok_or(RecordError::Missing("vulnerable_versions"))?;
    let (ranges, versions) = convert_npm_range(&vulnerable).map_err(RecordError::Invalid)?;
    let id = format!("NSWG-ECO-{number}");
    let mut advisory = Advisory::new(&id, FeedKind::NodeSecurityWg);
    advisory.summary = wire.title;
    advisory.details = wire.overview;
    advisory.published = wire.created_at;
    advisory.modified = wire.updated_at;
    advisory.aliases = wire.cves.unwrap_or_default();
    advisory.references = match wire.references {
        Some(serde_json::Value::Array(list)) => list
            .into_iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(text)) => text
            .split_whitespace()
            .filter(|word| word.starts_with("http"))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    if let Some(vector) = wire.cvss_vector.filter(|vector| !vector.trim().is_empty()) {
        let vector = vector.trim().to_owned();
        if vector.starts_with("CVSS:3") {
            advisory.severity.push(SeverityStatement::CvssV3(vector));
        } else if vector.starts_with("CVSS:4") {
            advisory.severity.push(SeverityStatement::CvssV4(vector));
        } else {
            advisory.severity.push(SeverityStatement::CvssV2(vector));
        }
    }
    advisory.link = Some(format!(
        "https://github.com/nodejs/security-wg/blob/main/vuln/npm/{number}.json"
    ));
    advisory.derive_cves();
    advisory.affected.push(Affected {
        ecosystem: "npm".to_owned(),
        package: module.trim().to_owned(),
        ranges,
        versions,
        status: Default::default(),
        distro_rating: None,
        severity: Vec::new(),
    });
    Ok(advisory)
}

/// A version with missing parts filled with zeros; `x`/`*` parts make it a prefix.
#[derive(Debug, Clone)]
struct Partial {
    parts: Vec<u64>,
    /// Pre-release and build suffix of a full version, kept verbatim.
    suffix: String,
}

fn parse_partial(text: &str) -> Result<Partial, String> {
    let text = text.trim().trim_start_matches('v').trim_start_matches('=');
    if text.is_empty() || text == "*" || text == "x" || text == "X" {
        return Ok(Partial {
            parts: Vec::new(),
            suffix: String::new(),
        });
    }
    let (core, suffix) = match text.find(['-', '+']) {
        Some(index) => (&text[..index], &text[index..]),
        None => (text, ""),
    };
    let mut parts = Vec::new();
    for part in core.split('.') {
        if matches!(part, "x" | "X" | "*") {
            break;
        }
        parts.push(
            part.parse::<u64>()
                .map_err(|_| format!("bad version {text:?}"))?,
        );
    }
    if parts.len() > 3 {
        return Err(format!("bad version {text:?}"));
    }
    Ok(Partial {
        parts,
        suffix: suffix.to_owned(),
    })
}

fn full(partial: &Partial) -> String {
    let mut parts = partial.parts.clone();
    parts.resize(3, 0);
    format!("{}.{}.{}{}", parts[0], parts[1], parts[2], partial.suffix)
}

/// The smallest version above every version matching the prefix (`1.2` → `1.3.0-0`).
fn after_prefix(partial: &Partial) -> Option<String> {
    let mut parts = partial.parts.clone();
    let last = parts.last_mut()?;
    *last += 1;
    parts.resize(3, 0);
    Some(format!("{}.{}.{}-0", parts[0], parts[1], parts[2]))
}

/// One comparator set's bounds.
#[derive(Default)]
struct Bounds {
    lower: Option<String>,
    upper: Option<Event>,
    exact: Option<String>,
}

fn convert_npm_range(range: &str) -> Result<(Vec<Range>, Vec<String>), String> {
    let mut ranges = Vec::new();
    let mut versions = Vec::new();
    for alternative in range.split("||") {
        let alternative = alternative.trim();
        if alternative.is_empty() {
            return Err(format!("empty alternative in {range:?}"));
        }
        let bounds = parse_comparator_set(alternative)?;
        if let Some(exact) = bounds.exact {
            versions.push(exact);
            continue;
        }
        let mut events = vec![Event::Introduced(
            bounds.lower.unwrap_or_else(|| "0".to_owned()),
        )];
        if let Some(upper) = bounds.upper {
            events.push(upper);
        }
        ranges.push(Range {
            kind: RangeKind::Semver,
            events,
        });
    }
    Ok((ranges, versions))
}

fn parse_comparator_set(text: &str) -> Result<Bounds, String> {
    // Hyphen ranges: `1.2.3 - 2.3.4`.
    if let Some((low, high)) = text.split_once(" - ") {
        let low = parse_partial(low)?;
        let high = parse_partial(high)?;
        let upper = if high.parts.len() == 3 || high.parts.is_empty() {
            (!high.parts.is_empty()).then(|| Event::LastAffected(full(&high)))
        } else {
            after_prefix(&high).map(Event::Fixed)
        };
        return Ok(Bounds {
            lower: Some(full(&low)),
            upper,
            exact: None,
        });
    }
    // Glue operators to their versions: `>= 1.0` → `>=1.0`.
    let mut tokens: Vec<String> = Vec::new();
    let mut pending_operator = String::new();
    for word in text.split_whitespace() {
        if word
            .chars()
            .all(|c| matches!(c, '<' | '>' | '=' | '^' | '~'))
        {
            pending_operator.push_str(word);
        } else {
            tokens.push(format!("{pending_operator}{word}"));
            pending_operator.clear();
        }
    }
    if !pending_operator.is_empty() {
        return Err(format!("dangling operator in {text:?}"));
    }
    let mut bounds = Bounds::default();
    for token in tokens {
        let (operator, version) = split_operator(&token);
        let partial = parse_partial(version)?;
        match operator {
            ">=" => bounds.lower = Some(full(&partial)),
            ">" => {
                bounds.lower = if partial.parts.len() == 3 && partial.suffix.is_empty() {
                    Some(format!(
                        "{}.{}.{}-0",
                        partial.parts[0],
                        partial.parts[1],
                        partial.parts[2] + 1
                    ))
                } else {
                    after_prefix(&partial)
                };
            }
            "<" => {
                if !partial.parts.is_empty() {
                    bounds.upper = Some(Event::Fixed(full(&partial)));
                } else {
                    return Err(format!("empty upper bound in {text:?}"));
                }
            }
            "<=" => {
                bounds.upper = if partial.parts.len() == 3 || partial.parts.is_empty() {
                    Some(Event::LastAffected(full(&partial)))
                } else {
                    after_prefix(&partial).map(Event::Fixed)
                };
            }
            "^" | "~" | "~>" => {
                bounds.lower = Some(full(&partial));
                let significant = if operator == "^" {
                    // The first non-zero part (or the last given part) is the one that
                    // may not change.
                    let position = partial
                        .parts
                        .iter()
                        .position(|part| *part != 0)
                        .unwrap_or(partial.parts.len().saturating_sub(1));
                    partial.parts[..=position.min(partial.parts.len().saturating_sub(1))].to_vec()
                } else if partial.parts.len() >= 2 {
                    partial.parts[..2].to_vec()
                } else {
                    partial.parts.clone()
                };
                bounds.upper = after_prefix(&Partial {
                    parts: significant,
                    suffix: String::new(),
                })
                .map(Event::Fixed);
            }
            "" | "=" => {
                if partial.parts.len() == 3 {
                    bounds.exact = Some(full(&partial));
                } else if partial.parts.is_empty() {
                    bounds.lower = Some("0".to_owned());
                } else {
                    bounds.lower = Some(full(&partial));
                    bounds.upper = after_prefix(&partial).map(Event::Fixed);
                }
            }
            other => return Err(format!("unknown operator {other:?} in {text:?}")),
        }
    }
    Ok(bounds)
}

fn split_operator(token: &str) -> (&str, &str) {
    let end = token
        .find(|c: char| !matches!(c, '<' | '>' | '=' | '^' | '~'))
        .unwrap_or(token.len());
    (&token[..end], &token[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(range: &str) -> Vec<Vec<Event>> {
        convert_npm_range(range)
            .unwrap()
            .0
            .into_iter()
            .map(|range| range.events)
            .collect()
    }

    #[test]
    fn converts_npm_ranges() {
        use Event::*;
        assert_eq!(
            events(">=4.17.15 <4.17.19"),
            [vec![Introduced("4.17.15".into()), Fixed("4.17.19".into())]]
        );
        assert_eq!(
            events("<= 1.2.0"),
            [vec![Introduced("0".into()), LastAffected("1.2.0".into())]]
        );
        assert_eq!(events(">1.2.3"), [vec![Introduced("1.2.4-0".into())]]);
        assert_eq!(
            events("^0.2.1"),
            [vec![Introduced("0.2.1".into()), Fixed("0.3.0-0".into())]]
        );
        assert_eq!(
            events("~1.2.1"),
            [vec![Introduced("1.2.1".into()), Fixed("1.3.0-0".into())]]
        );
        assert_eq!(events("*"), [vec![Introduced("0".into())]]);
        assert_eq!(events("<1.0 || >=2.0.0 <2.1.0").len(), 2);
        assert_eq!(convert_npm_range("1.2.3").unwrap().1, ["1.2.3"]);
        assert!(convert_npm_range(">=a.b").is_err());
    }
}
