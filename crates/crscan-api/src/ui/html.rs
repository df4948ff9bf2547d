//! Writing HTML by hand: escaping, the page frame (header, navigation, breadcrumbs)
//! and the few pieces every page uses (the severity bar, times, sizes, digests).
//! Every value that came from a user, an image or the database goes through
//! [`esc`]; markup is only ever written by this module and `pages`.

use std::fmt::Write as _;

use crscan_model::{Severity, SeverityCounts};

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content and in
/// double- or single-quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(character),
        }
    }
    out
}

/// `text` percent-encoded for a URL path segment or query value.
pub(crate) fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Who is signed in, for the header.
pub(crate) struct Viewer {
    pub name: String,
    /// Whether tokens are configured (so there is a session to end).
    pub auth_enabled: bool,
}

/// A whole page: the frame around `body`, titled `title`, with breadcrumbs
/// (label, link) leading to it.
pub(crate) fn page(
    title: &str,
    crumbs: &[(&str, String)],
    viewer: Option<&Viewer>,
    body: &str,
) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{} · crscan</title>\
         <link rel=\"stylesheet\" href=\"/ui/assets/console.css\">\
         <script src=\"/ui/assets/console.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><nav aria-label=\"Main\"><a class=\"brand\" href=\"/ui/\">crscan</a>\
         <a href=\"/ui/\">Dashboard</a><a href=\"/ui/registries\">Registries</a></nav>",
        esc(title)
    );
    if let Some(viewer) = viewer {
        let _ = write!(
            out,
            "<div class=\"who\"><span>Signed in as <strong>{}</strong></span>",
            esc(&viewer.name)
        );
        if viewer.auth_enabled {
            out.push_str(
                "<form method=\"post\" action=\"/ui/logout\" data-logout>\
                 <button type=\"submit\" class=\"link\">Sign out</button></form>",
            );
        }
        out.push_str("</div>");
    }
    out.push_str("</header><main id=\"main\">");
    if !crumbs.is_empty() {
        out.push_str("<nav aria-label=\"Breadcrumb\" class=\"crumbs\"><ol>");
        for (label, link) in crumbs {
            let _ = write!(out, "<li><a href=\"{}\">{}</a></li>", esc(link), esc(label));
        }
        let _ = write!(
            out,
            "<li aria-current=\"page\">{}</li></ol></nav>",
            esc(title)
        );
    }
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// The six counters as a bar (proportional segments) and as text: each counter is
/// an element with `data-severity` holding its number, so that a reader, a test and
/// a screen reader all read the same numbers.
pub(crate) fn severity_bar(counts: &SeverityCounts) -> String {
    let total = counts.total();
    let mut label = String::new();
    let mut out = String::from("<div class=\"severity\">");
    let mut bar = String::new();
    for severity in Severity::ALL {
        let count = counts.get(severity);
        if !label.is_empty() {
            label.push_str(", ");
        }
        let _ = write!(label, "{} {count}", severity.as_str());
        if count > 0 {
            let _ = write!(
                bar,
                "<span class=\"seg sev-{}\" style=\"flex-grow:{count}\"></span>",
                severity.counter_name()
            );
        }
    }
    if total == 0 {
        bar.push_str("<span class=\"seg none\" style=\"flex-grow:1\"></span>");
    }
    let _ = write!(
        out,
        "<div class=\"bar\" role=\"img\" aria-label=\"{}\">{bar}</div><ul class=\"counters\">",
        esc(&label)
    );
    for severity in Severity::ALL {
        let _ = write!(
            out,
            "<li class=\"sev-{}\"><abbr title=\"{}\">{}</abbr> <span data-severity=\"{}\">{}</span></li>",
            severity.counter_name(),
            severity.as_str(),
            abbreviation(severity),
            severity.as_str(),
            counts.get(severity)
        );
    }
    out.push_str("</ul></div>");
    out
}

fn abbreviation(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "C",
        Severity::High => "H",
        Severity::Medium => "M",
        Severity::Low => "L",
        Severity::Negligible => "N",
        Severity::Undefined => "U",
    }
}

/// A severity as a badge.
pub(crate) fn severity_badge(severity: Severity) -> String {
    format!(
        "<span class=\"badge sev-{}\">{}</span>",
        severity.counter_name(),
        severity.as_str()
    )
}

/// A time (Unix milliseconds) as `<time>`: machine-readable and short.
pub(crate) fn time(millis: i64) -> String {
    let full = crscan_model::time::rfc3339_seconds(millis / 1000);
    let short = full.replacen('T', " ", 1).replace('Z', " UTC");
    format!("<time datetime=\"{}\">{}</time>", esc(&full), esc(&short))
}

/// Bytes in binary units.
pub(crate) fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A digest shortened to its algorithm and 12 hex digits, the whole in a title.
pub(crate) fn short_digest(digest: &str) -> String {
    let short: String = match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", hex.get(..12).unwrap_or(hex)),
        None => digest.to_owned(),
    };
    format!(
        "<code class=\"digest\" title=\"{}\">{}</code>",
        esc(digest),
        esc(&short)
    )
}

/// A command the reader can copy: shown as code, with a Copy button that the
/// script reveals.
pub(crate) fn copy_command(label: &str, command: &str) -> String {
    format!(
        "<div class=\"copy\"><span class=\"copy-label\">{}</span><pre><code>{}</code></pre>\
         <button type=\"button\" data-copy=\"{}\" hidden>Copy</button></div>",
        esc(label),
        esc(command),
        esc(command)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_encode("crp1/app web"), "crp1%2Fapp%20web");
    }

    #[test]
    fn sizes_and_digests_are_short() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert!(short_digest("sha256:0123456789abcdef0123").contains(">sha256:0123456789ab<"));
    }

    #[test]
    fn the_bar_carries_all_six_counters() {
        let counts = SeverityCounts {
            critical: 2,
            high: 1,
            ..SeverityCounts::default()
        };
        let bar = severity_bar(&counts);
        assert!(bar.contains("<span data-severity=\"CRITICAL\">2</span>"));
        assert!(bar.contains("<span data-severity=\"UNDEFINED\">0</span>"));
        assert_eq!(bar.matches("data-severity=").count(), 6);
    }
}
