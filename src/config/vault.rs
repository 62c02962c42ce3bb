//! The `vault { }` block: where Vault/OpenBao is and how patiently to talk to it.
//! Falls back to `VAULT_ADDR`/`BAO_ADDR` and `VAULT_CACERT`/`BAO_CACERT`, as Vault
//! Agent does, but only here, so the client never reads the environment itself.
//!
//! Tokens never travel in clear text by accident: `http://` is accepted for this
//! machine (loopback) only, unless `allow_cleartext_tokens = true` says otherwise.

use std::path::PathBuf;
use std::time::Duration;

use super::hcl_writer::Hcl;
use super::reader::Table;
use super::{ConfigError, Env};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultConfig {
    pub address: url::Url,
    pub ca_cert: Option<PathBuf>,
    pub tls_skip_verify: bool,
    /// `http://` to another machine: every token crosses the network in clear text.
    pub allow_cleartext_tokens: bool,
    /// Per request, connect to last byte.
    pub timeout: Duration,
    pub retry: Retry,
}

/// Retries of a transient failure: `num_retries` more attempts after the first, each
/// after an exponential, jittered pause between `min_backoff` and `max_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub num_retries: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

const VAULT_AGENT_ONLY: &[&str] = &["ca_path", "client_cert", "client_key", "tls_server_name", "namespace"];

/// Per request; the provisioner's client uses it too.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_NUM_RETRIES: u32 = 3;
const DEFAULT_MIN_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A oneshot run gives up and reports rather than retrying for long.
const MAX_NUM_RETRIES: u64 = 20;

impl Default for Retry {
    fn default() -> Self {
        Retry { num_retries: DEFAULT_NUM_RETRIES, min_backoff: DEFAULT_MIN_BACKOFF, max_backoff: DEFAULT_MAX_BACKOFF }
    }
}

impl VaultConfig {
    pub(super) fn print(&self, w: &mut Hcl) {
        w.open("vault");
        w.str("address", self.address.as_str().trim_end_matches('/'));
        if let Some(ca) = &self.ca_cert {
            w.path("ca_cert", ca);
        }
        w.raw("tls_skip_verify", self.tls_skip_verify);
        w.raw("allow_cleartext_tokens", self.allow_cleartext_tokens);
        w.dur("timeout", self.timeout);
        self.retry.print(w);
        w.close();
    }
}

impl Retry {
    fn print(&self, w: &mut Hcl) {
        w.open("retry");
        w.raw("num_retries", self.num_retries);
        w.dur("min_backoff", self.min_backoff);
        w.dur("max_backoff", self.max_backoff);
        w.close();
    }
}

pub(super) fn parse(block: Option<Table<'_>>, top: &Table<'_>, env: &Env<'_>) -> Result<VaultConfig, ConfigError> {
    let (address, ca_cert, tls_skip_verify, cleartext, timeout, retry) = match &block {
        Some(t) => (
            t.string("address")?,
            t.path("ca_cert")?,
            t.bool("tls_skip_verify")?,
            t.bool("allow_cleartext_tokens")?,
            t.duration("timeout")?,
            parse_retry(t.table("retry")?)?,
        ),
        None => (None, None, None, None, None, Retry::default()),
    };
    // Errors about the block as a whole point at `vault` even when it is absent.
    let err = |key: &str, problem: String| match &block {
        Some(t) => t.err(key, problem),
        None => ConfigError { block: Some("vault".into()), ..top.err(key, problem) },
    };

    let (address, from) = match address {
        Some(a) => (a, "this key"),
        None => match env("VAULT_ADDR").map(|a| (a, "VAULT_ADDR")).or_else(|| env("BAO_ADDR").map(|a| (a, "BAO_ADDR")))
        {
            Some(found) => found,
            None => {
                return Err(err(
                    "address",
                    "is missing; set vault { address = \"https://vault.example.com:8200\" } or export VAULT_ADDR"
                        .into(),
                ));
            }
        },
    };
    let address = parse_address(&address).map_err(|p| err("address", format!("(from {from}) {p}")))?;
    let allow_cleartext_tokens = cleartext.unwrap_or(false);
    check_cleartext(&address, allow_cleartext_tokens, "allow_cleartext_tokens = true")
        .map_err(|p| err("address", format!("(from {from}) {p}")))?;

    let ca_cert = match ca_cert {
        Some(p) => Some(p),
        None => match env("VAULT_CACERT").or_else(|| env("BAO_CACERT")) {
            Some(p) if PathBuf::from(&p).is_absolute() => Some(PathBuf::from(p)),
            Some(_) => return Err(err("ca_cert", "(from VAULT_CACERT/BAO_CACERT) must be an absolute path".into())),
            None => None,
        },
    };
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        return Err(err("timeout", "must be more than zero".into()));
    }
    if let Some(t) = block {
        t.finish(VAULT_AGENT_ONLY)?;
    }
    Ok(VaultConfig {
        address,
        ca_cert,
        tls_skip_verify: tls_skip_verify.unwrap_or(false),
        allow_cleartext_tokens,
        timeout,
        retry,
    })
}

fn parse_retry(t: Option<Table<'_>>) -> Result<Retry, ConfigError> {
    let Some(t) = t else { return Ok(Retry::default()) };
    let d = Retry::default();
    let num_retries = match t.uint("num_retries")? {
        None => d.num_retries,
        Some(n) if n <= MAX_NUM_RETRIES => n as u32,
        Some(_) => {
            return Err(t.err(
                "num_retries",
                format!("must be {MAX_NUM_RETRIES} or fewer; a oneshot run should give up and report"),
            ));
        }
    };
    let min_backoff = t.duration("min_backoff")?.unwrap_or(d.min_backoff);
    let max_backoff = t.duration("max_backoff")?.unwrap_or(d.max_backoff.max(min_backoff));
    if min_backoff > max_backoff {
        return Err(t.err("min_backoff", "is larger than max_backoff; make min_backoff the smaller of the two"));
    }
    t.finish(&[])?;
    Ok(Retry { num_retries, min_backoff, max_backoff })
}

/// Refuses `http://` to anything but this machine unless `allowed`; `opt_in` is how the
/// caller's file spells the opt-in.
pub fn check_cleartext(url: &url::Url, allowed: bool, opt_in: &str) -> Result<(), String> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() == "https" || loopback || allowed {
        return Ok(());
    }
    Err(format!(
        "is http:// to {}, which is not this machine: every Vault token would cross the network in clear text; \
         use https:// (with ca_cert for a private CA), or, on a network you trust, set {opt_in}",
        url.host_str().unwrap_or_default()
    ))
}

/// An `http(s)://host[:port]` URL without credentials, path, query or fragment.
pub fn parse_address(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|_| "is not a URL; write it as https://vault.example.com:8200".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must start with https:// (or http:// for a local dev server)".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host name".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; the agent authenticates with auto_auth".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must be only scheme, host and port (the agent adds /v1/...)".into());
    }
    Ok(url)
}
