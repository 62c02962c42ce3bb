//! The `telemetry { }` block: where the agent writes its metrics for node_exporter's
//! textfile collector (`textfile`, a `.prom` file, replaced atomically after every
//! run). Vault Agent's own telemetry sinks (statsd, Prometheus retention, Circonus,
//! ...) are not implemented and are refused by name; the block's printing lives here.
//!
//! It must never accept a file the collector would not read: only `*.prom` is.

use std::path::PathBuf;

use super::error::ConfigError;
use super::hcl_writer::Hcl;
use super::reader::Table;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The metrics file; `None`: no metrics are written.
    pub textfile: Option<PathBuf>,
}

/// node_exporter's textfile collector reads only files with this suffix.
const SUFFIX: &str = ".prom";

const VAULT_AGENT_ONLY: &[&str] = &[
    "usage_gauge_period",
    "maximum_gauge_cardinality",
    "disable_hostname",
    "enable_hostname_label",
    "lease_metrics_epsilon",
    "num_lease_metrics_buckets",
    "add_lease_metrics_namespace_labels",
    "filter_default",
    "prefix_filter",
    "metrics_prefix",
    "statsite_address",
    "statsd_address",
    "dogstatsd_addr",
    "dogstatsd_tags",
    "prometheus_retention_time",
    "circonus_api_token",
    "circonus_api_app",
    "circonus_api_url",
    "circonus_submission_interval",
    "circonus_submission_url",
    "circonus_check_id",
    "circonus_check_force_metric_activation",
    "circonus_check_instance_id",
    "circonus_check_search_tag",
    "circonus_check_display_name",
    "circonus_check_tags",
    "circonus_broker_id",
    "circonus_broker_select_tag",
    "stackdriver_project_id",
    "stackdriver_location",
    "stackdriver_namespace",
    "stackdriver_debug_logs",
];

impl TelemetryConfig {
    pub(super) fn print(&self, w: &mut Hcl) {
        if let Some(p) = &self.textfile {
            w.open("telemetry");
            w.path("textfile", p);
            w.close();
        }
    }
}

pub(super) fn parse(t: Option<Table<'_>>) -> Result<TelemetryConfig, ConfigError> {
    let Some(t) = t else { return Ok(TelemetryConfig::default()) };
    let textfile = t.path("textfile")?;
    // Made before `finish`, which ends the table: an unsupported key is reported first.
    let missing = t.block_err(
        "has no textfile; add textfile = \"/var/lib/node_exporter/textfile/claude-auth-sync-${user}.prom\" (or remove the block)",
    );
    let not_prom =
        t.err("textfile", "must name a file ending in .prom: node_exporter's textfile collector reads no other");
    t.finish(VAULT_AGENT_ONLY)?;
    let path = textfile.ok_or(missing)?;
    if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.len() > SUFFIX.len() && n.ends_with(SUFFIX)) {
        return Err(not_prom);
    }
    Ok(TelemetryConfig { textfile: Some(path) })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError, parse};
    use crate::os_user::OsUser;

    fn load(telemetry: &str) -> Result<Config, ConfigError> {
        let text = format!(
            r#"vault {{ address = "https://vault.example.com:8200" }}
auto_auth {{
  method "token_file" {{
    config = {{ token_file_path = "~/vault-token" }}
  }}
}}
{telemetry}"#
        );
        let alice = OsUser { name: "alice".into(), uid: 1000, gid: 1000, home: "/home/alice".into() };
        parse(&text, Path::new("/etc/test.hcl"), &alice, &|_| None)
    }

    #[test]
    fn the_textfile_is_interpolated_printed_and_read_back() {
        assert_eq!(load("").unwrap().telemetry.textfile, None, "no block, no metrics");
        let c = load(r#"telemetry { textfile = "/var/lib/node_exporter/textfile/claude-auth-sync-${user}.prom" }"#)
            .unwrap();
        let path = Path::new("/var/lib/node_exporter/textfile/claude-auth-sync-alice.prom");
        assert_eq!(c.telemetry.textfile.as_deref(), Some(path));
        let printed = c.to_hcl();
        assert!(
            printed.contains(
                "telemetry {\n  textfile = \"/var/lib/node_exporter/textfile/claude-auth-sync-alice.prom\"\n}"
            ),
            "{printed}"
        );
        assert_eq!(parse(&printed, Path::new("/etc/test.hcl"), &c.user, &|_| None).unwrap(), c);
        assert!(!load("").unwrap().to_hcl().contains("telemetry"));
    }

    #[test]
    fn vault_agents_sinks_a_missing_textfile_and_a_non_prom_file_are_refused() {
        let e = load(r#"telemetry { prometheus_retention_time = "30s" }"#).unwrap_err().to_string();
        assert!(e.contains("prometheus_retention_time") && e.contains("does not support"), "{e}");
        let e = load("telemetry {\n  textfile = \"/x/a.prom\"\n  statsd_address = \"127.0.0.1:8125\"\n}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("statsd_address") && e.contains("does not support"), "{e}");
        let e = load("telemetry {}").unwrap_err().to_string();
        assert!(e.contains("telemetry") && e.contains("has no textfile"), "{e}");
        let e = load(r#"telemetry { textfile = "/x/metrics.txt" }"#).unwrap_err().to_string();
        assert!(e.contains("textfile") && e.contains("ending in .prom"), "{e}");
        let e = load(r#"telemetry { textfile = "/x/.prom" }"#).unwrap_err().to_string();
        assert!(e.contains("ending in .prom"), "{e}");
        let e = load("telemetry {\n  textfile = \"/x/a.prom\"\n  bogus = 1\n}").unwrap_err().to_string();
        assert!(e.contains("unknown key"), "{e}");
    }
}
