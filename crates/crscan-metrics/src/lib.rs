//! The metrics of one `crscan serve` process, served at `/metrics` in the Prometheus
//! text exposition format (version 0.0.4,
//! <https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! crscan keeps a handful of labelled counters and histograms, so the encoder is
//! written here (about a hundred lines) instead of adding a metrics crate and its
//! registry to every crate that records one. Every family is declared in
//! [`Metrics`]; labels take values from small fixed sets (a route template, never a
//! raw path; a status; a result), so the number of series stays bounded.
//!
//! Architecture invariant: no I/O and no dependencies. Callers record; the API
//! renders [`Metrics::render`] with the gauges it reads at scrape time (queue depth,
//! the database's age), which are values of the store and the database file, not of
//! this process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

/// A counter family: one `u64` per combination of label values.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl CounterVec {
    const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> CounterVec {
        CounterVec {
            name,
            help,
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `by` to the series of `values` (one per label, in declaration order).
    pub fn add(&self, values: &[&str], by: u64) {
        let key = values.iter().map(|value| (*value).to_owned()).collect();
        *lock(&self.values).entry(key).or_insert(0) += by;
    }

    /// Adds one.
    pub fn inc(&self, values: &[&str]) {
        self.add(values, 1);
    }

    /// The current value of a series (0 when never recorded).
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|value| (*value).to_owned()).collect();
        lock(&self.values).get(&key).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        // In the text format a counter's HELP and TYPE name the sample, `_total`
        // included (OpenMetrics leaves the suffix out; Prometheus's parsers read both).
        header(out, &format!("{}_total", self.name), self.help, "counter");
        for (values, value) in lock(&self.values).iter() {
            let _ = writeln!(
                out,
                "{}_total{} {value}",
                self.name,
                label_set(self.labels, values, None)
            );
        }
    }
}

/// Bucket bounds, in seconds, of HTTP request latencies.
pub const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds, in seconds, of scan durations.
pub const SCAN_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Observations at or under each bound (not cumulative; summed on render).
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

/// A histogram family: bucket counts, a sum and a count per combination of labels.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    bounds: &'static [f64],
    values: Mutex<BTreeMap<Vec<String>, Histogram>>,
}

impl HistogramVec {
    const fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> HistogramVec {
        HistogramVec {
            name,
            help,
            labels,
            bounds,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records one observation of `duration`.
    pub fn observe(&self, values: &[&str], duration: Duration) {
        let seconds = duration.as_secs_f64();
        let key = values.iter().map(|value| (*value).to_owned()).collect();
        let mut map = lock(&self.values);
        let histogram = map.entry(key).or_insert_with(|| Histogram {
            buckets: vec![0; self.bounds.len()],
            ..Histogram::default()
        });
        if let Some(index) = self.bounds.iter().position(|bound| seconds <= *bound) {
            histogram.buckets[index] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// How many observations a series has.
    pub fn count(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|value| (*value).to_owned()).collect();
        lock(&self.values).get(&key).map_or(0, |found| found.count)
    }

    fn render(&self, out: &mut String) {
        header(out, self.name, self.help, "histogram");
        for (values, histogram) in lock(&self.values).iter() {
            let mut cumulative = 0;
            for (bound, count) in self.bounds.iter().zip(&histogram.buckets) {
                cumulative += count;
                let le = format_float(*bound);
                let _ = writeln!(
                    out,
                    "{}_bucket{} {cumulative}",
                    self.name,
                    label_set(self.labels, values, Some(&le))
                );
            }
            let labels = label_set(self.labels, values, None);
            let _ = writeln!(
                out,
                "{}_bucket{} {}",
                self.name,
                label_set(self.labels, values, Some("+Inf")),
                histogram.count
            );
            let _ = writeln!(
                out,
                "{}_sum{labels} {}",
                self.name,
                format_float(histogram.sum)
            );
            let _ = writeln!(out, "{}_count{labels} {}", self.name, histogram.count);
        }
    }
}

/// A gauge read at scrape time: a family name, its help, and its series.
#[derive(Debug, Clone)]
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    /// Label names and values of each series, and its value.
    pub series: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Every metric family crscan records.
#[derive(Debug)]
pub struct Metrics {
    /// HTTP requests by route template, method and status code.
    pub http_requests: CounterVec,
    /// Latency of HTTP requests by route template, method and status code.
    pub http_request_duration: HistogramVec,
    /// Manifests pushed (`PUT /v2/…/manifests/…` answered 201).
    pub pushes: CounterVec,
    /// Manifests pulled (`GET /v2/…/manifests/…` answered 200).
    pub pulls: CounterVec,
    /// Registry bytes by direction: `received` (blob uploads, manifests pushed),
    /// `sent` (blobs and manifests pulled).
    pub registry_bytes: CounterVec,
    /// Scans finished by result: `ready`, `error`, `retried`, `released` (handed back
    /// at shutdown), `lost` (its lease went to another worker).
    pub scans: CounterVec,
    /// Duration of finished scans by result.
    pub scan_duration: HistogramVec,
    /// Layer-cache lookups by result: `hit` or `miss`.
    pub layer_cache: CounterVec,
    /// Errors by source: `store` (the metadata store) or `blob` (the blob backend).
    pub errors: CounterVec,
}

impl Metrics {
    const fn new() -> Metrics {
        Metrics {
            http_requests: CounterVec::new(
                "crscan_http_requests",
                "HTTP requests answered, by route template, method and status",
                &["route", "method", "status"],
            ),
            http_request_duration: HistogramVec::new(
                "crscan_http_request_duration_seconds",
                "Time to answer an HTTP request (to its response head), by route template, method and status",
                &["route", "method", "status"],
                REQUEST_BUCKETS,
            ),
            pushes: CounterVec::new(
                "crscan_registry_pushes",
                "Manifests pushed to the registry",
                &[],
            ),
            pulls: CounterVec::new(
                "crscan_registry_pulls",
                "Manifests pulled from the registry",
                &[],
            ),
            registry_bytes: CounterVec::new(
                "crscan_registry_bytes",
                "Bytes of blobs and manifests the registry received or sent",
                &["direction"],
            ),
            scans: CounterVec::new(
                "crscan_scans",
                "Scan attempts finished on this node, by result",
                &["result"],
            ),
            scan_duration: HistogramVec::new(
                "crscan_scan_duration_seconds",
                "Duration of scan attempts on this node, by result",
                &["result"],
                SCAN_BUCKETS,
            ),
            layer_cache: CounterVec::new(
                "crscan_layer_cache_lookups",
                "Layer-cache lookups of scans on this node, by result (hit or miss)",
                &["result"],
            ),
            errors: CounterVec::new(
                "crscan_backend_errors",
                "Failures of the metadata store and of the blob backend",
                &["source"],
            ),
        }
    }

    /// The exposition of every family, then `gauges`.
    pub fn render(&self, gauges: &[Gauge]) -> String {
        let mut out = String::new();
        self.http_requests.render(&mut out);
        self.http_request_duration.render(&mut out);
        self.pushes.render(&mut out);
        self.pulls.render(&mut out);
        self.registry_bytes.render(&mut out);
        self.scans.render(&mut out);
        self.scan_duration.render(&mut out);
        self.layer_cache.render(&mut out);
        self.errors.render(&mut out);
        for gauge in gauges {
            header(&mut out, gauge.name, gauge.help, "gauge");
            for (labels, value) in &gauge.series {
                let names: Vec<&'static str> = labels.iter().map(|(name, _)| *name).collect();
                let values: Vec<String> = labels.iter().map(|(_, value)| value.clone()).collect();
                let _ = writeln!(
                    out,
                    "{}{} {}",
                    gauge.name,
                    label_set(&names, &values, None),
                    format_float(*value)
                );
            }
        }
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a counter was held leaves a valid map: keep counting.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape(help, false));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn label_set(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value, true)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

/// Escapes `\` and newlines (and `"` in label values), as the format asks.
fn escape(text: &str, quote: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            other => out.push(other),
        }
    }
    out
}

fn format_float(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let metrics = Metrics::new();
        metrics
            .http_requests
            .inc(&["/v2/{name}/blobs/{digest}", "GET", "200"]);
        metrics.http_request_duration.observe(
            &["/v2/{name}/blobs/{digest}", "GET", "200"],
            Duration::from_millis(3),
        );
        metrics.errors.add(&["store"], 2);
        let text = metrics.render(&[Gauge {
            name: "crscan_scan_queue_jobs",
            help: "Jobs in the queue by state",
            series: vec![(vec![("state", "queued".to_owned())], 4.0)],
        }]);
        assert!(text.contains(
            "crscan_http_requests_total{route=\"/v2/{name}/blobs/{digest}\",method=\"GET\",status=\"200\"} 1\n"
        ), "{text}");
        assert!(text.contains("le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 1\n"), "{text}");
        assert!(
            text.contains("crscan_backend_errors_total{source=\"store\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# TYPE crscan_scan_queue_jobs gauge\ncrscan_scan_queue_jobs{state=\"queued\"} 4\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
        assert_eq!(escape("a\"b", false), "a\"b");
    }
}
