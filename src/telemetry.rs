//! Logs (`tracing`, text or JSON) and metrics (Prometheus, histograms with explicit buckets —
//! the exporter would otherwise export summaries).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once per process and returns its handle.
pub fn metrics() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let latency = [
                0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .expect("buckets are not empty");
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (tests embedding several apps share one).
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Sets up logging. `json` gives one JSON object per line (production); anything else text.
pub fn init_logging(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if format == "json" {
        builder.json().with_current_span(false).try_init()
    } else {
        builder.try_init()
    };
}
