//! `yarn.lock`, in Yarn classic's own format (v1) and in Yarn berry's YAML (v2+).
//!
//! Both are read by one line-based parser: a block starts with an unindented line
//! listing the specifiers it resolves (`"a@^1", a@^1.2:`), and its `version` field
//! is indented below (`version "1.2.3"` in v1, `version: 1.2.3` in berry).
//! See <https://classic.yarnpkg.com/lang/en/docs/yarn-lock/> and
//! <https://yarnpkg.com/configuration/yarnrc> for the formats.

use crscan_model::ImageFile;

use super::{Collector, split_name};
use crate::Detected;

/// Protocols a Yarn specifier may use; anything else is reported and skipped.
const KNOWN_PROTOCOLS: &[&str] = &[
    "npm",
    "file",
    "link",
    "portal",
    "workspace",
    "patch",
    "exec",
    "git",
    "git+ssh",
    "git+https",
    "git+http",
    "git+file",
    "http",
    "https",
    "github",
    "gitlab",
    "bitbucket",
    "ssh",
];

/// Reads one `yarn.lock`.
pub(crate) fn detect(file: &ImageFile, out: &mut Detected) {
    if crate::skipped_over_limit("npm", file, out) {
        return;
    }
    let text = String::from_utf8_lossy(&file.contents);
    let mut collector = Collector::new(file);
    let mut block: Option<(&str, Option<&str>)> = None;
    let mut looks_like_yarn = text.trim().is_empty();
    let mut unexpected: Option<(&str, usize)> = None;
    for raw_line in text.lines() {
        let line = raw_line.trim_end_matches('\r');
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            finish_block(block.take(), file, &mut collector, out);
            let Some(header) = line.strip_suffix(':') else {
                let (_, count) = unexpected.get_or_insert((line, 0));
                *count += 1;
                continue;
            };
            looks_like_yarn = true;
            block = Some((header, None));
            continue;
        }
        let Some((_, version)) = block.as_mut() else {
            continue;
        };
        // Only fields directly under the block header (two spaces) belong to it.
        let Some(field) = line.strip_prefix("  ") else {
            continue;
        };
        if field.starts_with(' ') {
            continue;
        }
        if let Some(value) = field_value(field, "version") {
            *version = Some(value);
        }
    }
    finish_block(block.take(), file, &mut collector, out);
    if !looks_like_yarn {
        out.diagnostic("npm", &file.path, "not a yarn.lock file");
    } else if let Some((line, count)) = unexpected {
        out.diagnostic(
            "npm",
            &file.path,
            format!("{count} unexpected yarn.lock lines, the first {line:?}"),
        );
    }
    collector.finish(out);
}

/// The value of `field` in a v1 (`version "1.0.0"`, `"version" "1.0.0"`) or berry
/// (`version: 1.0.0`) line.
fn field_value<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let rest = line
        .strip_prefix('"')
        .and_then(|rest| rest.strip_prefix(field))
        .and_then(|rest| rest.strip_prefix('"'))
        .or_else(|| line.strip_prefix(field))?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    if !rest.starts_with(' ') {
        return None;
    }
    Some(unquote(rest.trim()))
}

fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(text)
}

/// Turns a finished block into a package.
fn finish_block(
    block: Option<(&str, Option<&str>)>,
    file: &ImageFile,
    collector: &mut Collector<'_>,
    out: &mut Detected,
) {
    let Some((header, version)) = block else {
        return;
    };
    if header == "__metadata" {
        return;
    }
    // The first specifier names the package; berry quotes the whole list at once.
    let first = header.split(", ").next().unwrap_or(header);
    let first = unquote(first.trim());
    let first = first.strip_prefix('"').unwrap_or(first);
    let (mut name, range) = split_name(first);
    let range = range.unwrap_or("");
    if let Some((protocol, rest)) = protocol(range) {
        if !KNOWN_PROTOCOLS.contains(&protocol) {
            out.diagnostic(
                "npm",
                &file.path,
                format!("unknown protocol {protocol:?} in yarn.lock entry {header:?}"),
            );
            return;
        }
        match protocol {
            // Patched packages repeat the package they patch.
            "patch" => return,
            // The project itself.
            "workspace" if rest == "." => return,
            "npm" => {
                let (real, real_range) = split_name(rest);
                if real_range.is_some() && !real.is_empty() {
                    name = real;
                }
            }
            _ => {}
        }
    }
    let Some(version) = version else {
        out.diagnostic(
            "npm",
            &file.path,
            format!("yarn.lock entry {header:?} has no version"),
        );
        return;
    };
    if name.is_empty() {
        out.diagnostic(
            "npm",
            &file.path,
            format!("yarn.lock entry {header:?} has no name"),
        );
        return;
    }
    collector.add(name, version, false);
}

/// Splits `protocol:rest` when `range` starts with a lowercase protocol name.
fn protocol(range: &str) -> Option<(&str, &str)> {
    let (protocol, rest) = range.split_once(':')?;
    let is_protocol = !protocol.is_empty()
        && protocol
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte == b'+');
    is_protocol.then_some((protocol, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::image_file;

    fn run(text: &str) -> Vec<(String, String)> {
        let file = image_file("/app/yarn.lock", text.as_bytes());
        let mut out = Detected::default();
        detect(&file, &mut out);
        out.packages
            .into_iter()
            .map(|p| (p.name, p.version))
            .collect()
    }

    #[test]
    fn reads_both_formats() {
        let classic = "# yarn lockfile v1\n\n\"@a/b@^1\", \"@a/b@^1.1\":\n  version \"1.2.0\"\n  dependencies:\n    c \"^2\"\n";
        assert_eq!(run(classic), [("@a/b".to_owned(), "1.2.0".to_owned())]);
        let berry = "__metadata:\n  version: 6\n\n\"x@npm:^1.0.0, x@npm:^1.1.0\":\n  version: 1.1.0\n  resolution: \"x@npm:1.1.0\"\n\n\"root@workspace:.\":\n  version: 0.0.0-use.local\n";
        assert_eq!(run(berry), [("x".to_owned(), "1.1.0".to_owned())]);
    }
}
