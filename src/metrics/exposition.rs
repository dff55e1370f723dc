//! Building a Prometheus exposition from values read at scrape time: counters, gauges and
//! [`Histogram`](super::histogram::Histogram)s with labels, grouped into one metric family
//! per name and encoded with the `prometheus` crate's text encoder.
//!
//! Names follow Prometheus conventions: a `basalt_` prefix, base units (`_seconds`,
//! `_bytes`), `_total` for counters. The caller names things; this module only shapes them.

use std::collections::BTreeMap;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};

use super::histogram::{bucket_bound_ns, HistogramSnapshot, FINITE_BUCKETS};

/// The content type of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metric families being gathered, by name.
#[derive(Default)]
pub struct Exposition {
    families: BTreeMap<String, MetricFamily>,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect()
}

impl Exposition {
    fn push(&mut self, name: &str, help: &str, kind: MetricType, metric: Metric) {
        let family = self.families.entry(name.to_string()).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(name.to_string());
            f.set_help(help.to_string());
            f.set_field_type(kind);
            f
        });
        family.mut_metric().push(metric);
    }

    /// A counter (its name ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, label: &[(&str, &str)], value: f64) {
        let mut metric = Metric::default();
        metric.set_label(labels(label));
        let mut c = Counter::default();
        c.set_value(value);
        metric.set_counter(c);
        self.push(name, help, MetricType::COUNTER, metric);
    }

    pub fn gauge(&mut self, name: &str, help: &str, label: &[(&str, &str)], value: f64) {
        let mut metric = Metric::default();
        metric.set_label(labels(label));
        let mut g = Gauge::default();
        g.set_value(value);
        metric.set_gauge(g);
        self.push(name, help, MetricType::GAUGE, metric);
    }

    /// A histogram of microsecond observations, exposed in seconds.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        label: &[(&str, &str)],
        snapshot: &HistogramSnapshot,
    ) {
        let mut cumulative = 0;
        let buckets = (0..FINITE_BUCKETS)
            .map(|i| {
                cumulative += snapshot.buckets[i];
                let mut b = Bucket::default();
                b.set_cumulative_count(cumulative);
                b.set_upper_bound(bucket_bound_ns(i) as f64 / 1e9);
                b
            })
            .collect();
        let mut h = Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(snapshot.count());
        h.set_sample_sum(snapshot.sum_us as f64 / 1e6);
        let mut metric = Metric::default();
        metric.set_label(labels(label));
        metric.set_histogram(h);
        self.push(name, help, MetricType::HISTOGRAM, metric);
    }

    /// The text exposition of everything gathered.
    pub fn encode(self) -> String {
        let families: Vec<MetricFamily> = self.families.into_values().collect();
        let mut out = Vec::default();
        // Encoding into memory fails only for a malformed family (an empty one), which
        // `push` never makes.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::histogram::Histogram as Latency;

    #[test]
    fn families_group_by_name_and_encode_as_text() {
        let mut e = Exposition::default();
        e.counter("basalt_x_total", "X.", &[("cmd", "get")], 3.0);
        e.counter("basalt_x_total", "X.", &[("cmd", "set")], 4.0);
        e.gauge("basalt_up", "Up.", &[], 1.0);
        let h = Latency::default();
        h.observe_us(3);
        h.observe_us(1_000_000);
        e.histogram("basalt_d_seconds", "D.", &[("cmd", "get")], &h.snapshot());
        let text = e.encode();
        assert!(text.contains("# TYPE basalt_x_total counter\n"), "{text}");
        assert!(text.contains("basalt_x_total{cmd=\"get\"} 3\n"), "{text}");
        assert!(text.contains("basalt_x_total{cmd=\"set\"} 4\n"), "{text}");
        assert!(text.contains("basalt_up 1\n"), "{text}");
        assert!(
            text.contains("basalt_d_seconds_bucket{cmd=\"get\",le=\"0.000004096\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("basalt_d_seconds_bucket{cmd=\"get\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("basalt_d_seconds_count{cmd=\"get\"} 2\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE basalt_x_total").count(), 1);
    }
}
