//! Prometheus metrics (text exposition format 0.0.4), hand-rolled: request counts by route and
//! status, a request latency histogram by route, and counters a server registers for its
//! domain (certificates issued, authorizations signed, …). Routes are the router's templates
//! (`/v1/certificates/{serial}`), never raw paths, so a scan cannot grow the label set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A server's metrics. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// (method, route, status) → count.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// route → latency histogram.
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// (name, help, optional `label="value"`, counter), in registration order.
    counters: Mutex<Vec<CounterEntry>>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

type CounterEntry = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    Counter,
);

/// A monotonically increasing counter registered with [`Metrics::counter`].
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn increment(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A poisoned lock only means another request panicked while counting; the numbers are
/// still the best we have.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Registers (or finds) counter `name` (`snake_case`, ending in `_total`) with its help
    /// text.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        self.register(name, help, None)
    }

    /// Registers (or finds) the series of counter `name` with one label, `label="value"`
    /// (e.g. `outcome="new"`); the series of one name share its help text.
    pub fn labelled_counter(
        &self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        value: &'static str,
    ) -> Counter {
        self.register(name, help, Some((label, value)))
    }

    fn register(
        &self,
        name: &'static str,
        help: &'static str,
        label: Option<(&'static str, &'static str)>,
    ) -> Counter {
        let mut counters = lock(&self.0.counters);
        if let Some((_, _, _, counter)) = counters
            .iter()
            .find(|(n, _, l, _)| *n == name && *l == label)
        {
            return counter.clone();
        }
        let counter = Counter::default();
        counters.push((name, help, label, counter.clone()));
        counter
    }

    /// Counts one finished request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.0.requests)
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.0.latency);
        let histogram = latency.entry(route.to_string()).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// Everything, in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "# HELP http_requests_total HTTP requests by method, route and status.\n\
             # TYPE http_requests_total counter"
        );
        for ((method, route, status), count) in lock(&self.0.requests).iter() {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {count}",
                escape(method),
                escape(route)
            );
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds HTTP request latency by route.\n\
             # TYPE http_request_duration_seconds histogram"
        );
        for (route, histogram) in lock(&self.0.latency).iter() {
            let route = escape(route);
            for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n\
                 http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count, histogram.sum_seconds, histogram.count
            );
        }
        let counters = lock(&self.0.counters);
        let mut described: Vec<&str> = Vec::new();
        for (name, help, _, _) in counters.iter() {
            if described.contains(name) {
                continue;
            }
            described.push(name);
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (_, _, label, counter) in counters.iter().filter(|(n, ..)| n == name) {
                match label {
                    None => {
                        let _ = writeln!(out, "{name} {}", counter.get());
                    }
                    Some((label, value)) => {
                        let _ = writeln!(
                            out,
                            "{name}{{{label}=\"{}\"}} {}",
                            escape(value),
                            counter.get()
                        );
                    }
                }
            }
        }
        out
    }
}

/// Label values escape `\`, `"` and newlines (exposition format).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histograms_and_counters() {
        let metrics = Metrics::new();
        let issued = metrics.counter("certificates_issued_total", "Certificates issued.");
        issued.increment();
        assert_eq!(
            metrics.counter("certificates_issued_total", "again").get(),
            1
        );
        metrics.observe_request("GET", "/v1/x", 200, Duration::from_millis(3));
        metrics.observe_request("GET", "/v1/x", 200, Duration::from_millis(30));
        metrics.observe_request("POST", "/v1/\"y\"", 400, Duration::from_secs(60));
        let text = metrics.render();
        assert!(
            text.contains("http_requests_total{method=\"GET\",route=\"/v1/x\",status=\"200\"} 2")
        );
        assert!(text.contains("route=\"/v1/\\\"y\\\"\",status=\"400\"} 1"));
        assert!(
            text.contains("http_request_duration_seconds_bucket{route=\"/v1/x\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket{route=\"/v1/x\",le=\"0.05\"} 2")
        );
        assert!(text
            .contains("http_request_duration_seconds_bucket{route=\"/v1/\\\"y\\\"\",le=\"5\"} 0"));
        assert!(text.contains("http_request_duration_seconds_count{route=\"/v1/x\"} 2"));
        assert!(
            text.contains("# TYPE certificates_issued_total counter\ncertificates_issued_total 1")
        );
    }

    #[test]
    fn labelled_counters_share_one_description() {
        let metrics = Metrics::new();
        let new = metrics.labelled_counter("notes_total", "Notes.", "outcome", "new");
        let repeat = metrics.labelled_counter("notes_total", "Notes.", "outcome", "repeat");
        new.add(2);
        repeat.increment();
        assert_eq!(
            metrics
                .labelled_counter("notes_total", "again", "outcome", "new")
                .get(),
            2
        );
        let text = metrics.render();
        assert!(text.contains(
            "# HELP notes_total Notes.\n# TYPE notes_total counter\n\
             notes_total{outcome=\"new\"} 2\nnotes_total{outcome=\"repeat\"} 1\n"
        ));
        assert_eq!(text.matches("# TYPE notes_total").count(), 1);
    }
}
