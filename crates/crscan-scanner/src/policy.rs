//! Scan policy rules (contract §4): which repositories a push rule or a scheduled
//! rule covers, and when a scheduled rescan is due. Pure functions over the
//! policy's `ScanRules` in wire form.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RulesWire {
    #[serde(default)]
    push_rule: Option<PushRuleWire>,
    #[serde(default)]
    schedule_rules: Vec<ScheduledRuleWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushRuleWire {
    #[serde(default)]
    repository_prefixes: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScheduledRuleWire {
    #[serde(default)]
    repository_prefixes: Vec<String>,
    #[serde(default)]
    rescan_period: Option<String>,
    #[serde(default)]
    disabled: bool,
}

/// Parsed rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Prefixes of the enabled push rule.
    pub push_prefixes: Vec<String>,
    /// Enabled scheduled rules: prefixes and period in milliseconds.
    pub schedules: Vec<(Vec<String>, i64)>,
}

impl Rules {
    /// Reads `ScanRules` JSON; malformed parts are ignored (the API validated them).
    pub fn parse(value: &serde_json::Value) -> Rules {
        let wire: RulesWire = serde_json::from_value(value.clone()).unwrap_or_default();
        let push_prefixes = wire
            .push_rule
            .filter(|rule| !rule.disabled)
            .map(|rule| rule.repository_prefixes)
            .unwrap_or_default();
        let schedules = wire
            .schedule_rules
            .into_iter()
            .filter(|rule| !rule.disabled)
            .filter_map(|rule| {
                let period = parse_duration(rule.rescan_period.as_deref()?)?;
                Some((rule.repository_prefixes, period))
            })
            .collect();
        Rules {
            push_prefixes,
            schedules,
        }
    }

    /// Whether the push rule covers `repository` (`<registryId>/<name>`).
    pub fn scans_on_push(&self, registry_id: &str, repository: &str) -> bool {
        covers(&self.push_prefixes, registry_id, repository)
    }

    /// The shortest rescan period among the scheduled rules covering `repository`.
    pub fn rescan_period(&self, registry_id: &str, repository: &str) -> Option<i64> {
        self.schedules
            .iter()
            .filter(|(prefixes, _)| covers(prefixes, registry_id, repository))
            .map(|(_, period)| *period)
            .min()
    }
}

/// Whether any prefix covers the repository: `*` covers all; a prefix covers the
/// repository of that name and its children. Prefixes may name the repository with
/// or without the leading registry id.
pub fn covers(prefixes: &[String], registry_id: &str, repository: &str) -> bool {
    let short = repository
        .strip_prefix(registry_id)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(repository);
    prefixes.iter().any(|prefix| {
        let prefix = prefix.trim_end_matches('/');
        prefix == "*"
            || [repository, short].iter().any(|name| {
                *name == prefix
                    || name
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    })
}

/// Parses a proto3 JSON `Duration` (`"604800s"`, `"1.5s"`) into milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let seconds = text.strip_suffix('s')?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut millis = whole.checked_mul(1000)?;
    let padded = format!("{fraction:0<3}");
    millis = millis.checked_add(padded[..3].parse::<i64>().ok()?)?;
    Some(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_cover_children_and_star_covers_all() {
        let prefixes = vec!["crp1/ubuntu".to_owned()];
        assert!(covers(&prefixes, "crp1", "crp1/ubuntu"));
        assert!(covers(&prefixes, "crp1", "crp1/ubuntu/focal"));
        assert!(!covers(&prefixes, "crp1", "crp1/ubuntu-old"));
        assert!(covers(&["ubuntu".to_owned()], "crp1", "crp1/ubuntu/x"));
        assert!(covers(&["*".to_owned()], "crp1", "crp1/anything"));
        assert!(!covers(&[], "crp1", "crp1/anything"));
    }

    #[test]
    fn durations_are_proto3_json() {
        assert_eq!(parse_duration("604800s"), Some(604_800_000));
        assert_eq!(parse_duration("1.5s"), Some(1500));
        assert_eq!(parse_duration("7d"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn rules_skip_disabled_parts() {
        let rules = Rules::parse(&serde_json::json!({
            "pushRule": {"repositoryPrefixes": ["*"], "disabled": true},
            "scheduleRules": [
                {"repositoryPrefixes": ["a"], "rescanPeriod": "60s"},
                {"repositoryPrefixes": ["a/b"], "rescanPeriod": "30s"},
                {"repositoryPrefixes": ["*"], "rescanPeriod": "10s", "disabled": true}
            ]
        }));
        assert!(!rules.scans_on_push("r", "r/a"));
        assert_eq!(rules.rescan_period("r", "r/a/b"), Some(30_000));
        assert_eq!(rules.rescan_period("r", "r/a"), Some(60_000));
        assert_eq!(rules.rescan_period("r", "r/c"), None);
    }
}
