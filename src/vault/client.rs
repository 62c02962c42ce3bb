//! The HTTP side of Vault: a vaultrs client built only from the validated `vault`
//! block (vaultrs would otherwise read `VAULT_*` variables silently), and [`Vault::call`],
//! which runs one request under the block's timeout and retry policy and sorts
//! vaultrs' errors into [`VaultError`] kinds.
//!
//! It must never put a response body, a token or a secret-id into an error or a log
//! line; Vault's own short error strings ("permission denied") are kept.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use rustify::clients::reqwest::Client as HttpClient;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{Client, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::VaultError;
use crate::config::{Retry, VaultConfig};
use crate::secret::Secret;

pub struct Vault {
    client: VaultClient,
    timeout: Duration,
    retry: Retry,
}

/// Pauses between attempts; the count of retries always comes from `vault.retry`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Vault {
    /// A client without a token; [`Vault::set_token`] adds one after auth.
    pub fn new(cfg: &VaultConfig) -> Result<Self, VaultError> {
        let settings = VaultClientSettingsBuilder::default()
            .address(cfg.address.as_str())
            .ca_certs(Vec::new())
            .identity(None)
            .timeout(Some(cfg.timeout))
            .token("")
            .verify(!cfg.tls_skip_verify)
            .namespace(None)
            .build()
            .map_err(|e| VaultError::Setup { detail: e.to_string() })?;
        let http = http_client(cfg)?;
        let middle = EndpointMiddleware {
            token: String::new(),
            version: format!("v{}", settings.version),
            wrap: None,
            namespace: None,
        };
        let client = VaultClient { http: HttpClient::new(cfg.address.as_str(), http), middle, settings };
        Ok(Vault { client, timeout: cfg.timeout, retry: cfg.retry })
    }

    pub fn set_token(&mut self, token: &Secret) {
        self.client.set_token(token.expose());
    }

    /// The `vault.retry` backoff.
    pub fn default_backoff(&self) -> Backoff {
        Backoff { min: self.retry.min_backoff, max: self.retry.max_backoff }
    }

    /// Runs `request` with the `vault.retry` policy.
    pub async fn call<T, F>(&self, op: &'static str, request: F) -> Result<T, VaultError>
    where
        F: AsyncFn(&VaultClient) -> Result<T, ClientError>,
    {
        self.call_with(op, self.default_backoff(), request).await
    }

    /// Runs `request`, retrying transient failures (never a 4xx) up to
    /// `vault.retry.num_retries` times with jittered exponential pauses within `backoff`.
    pub async fn call_with<T, F>(&self, op: &'static str, backoff: Backoff, request: F) -> Result<T, VaultError>
    where
        F: AsyncFn(&VaultClient) -> Result<T, ClientError>,
    {
        let policy = ExponentialBuilder::default()
            .with_min_delay(backoff.min)
            .with_max_delay(backoff.max)
            .with_max_times(self.retry.num_retries as usize)
            .with_jitter();
        let client = &self.client;
        let timeout = self.timeout;
        let request = &request;
        (move || async move { request(client).await.map_err(|e| classify(op, timeout, e)) })
            .retry(policy)
            .sleep(tokio::time::sleep)
            .when(VaultError::is_retryable)
            // backon's jitter can add up to the whole delay; keep every pause within max.
            .adjust(move |_, pause| pause.map(|p| p.min(backoff.max)))
            .notify(|e, pause| tracing::warn!("{e}; retrying in {}", humantime::format_duration(round_ms(pause))))
            .await
    }
}

/// The HTTP client, built here rather than by vaultrs, which merges `ca_cert` into the
/// platform trust store: with `ca_cert` set, only that file is trusted (as Vault's CLI
/// does with `VAULT_CACERT`), so neither a system CA nor `SSL_CERT_FILE` can vouch for
/// an impostor.
fn http_client(cfg: &VaultConfig) -> Result<reqwest::Client, VaultError> {
    let mut b = reqwest::Client::builder()
        .tls_backend_rustls()
        .timeout(cfg.timeout)
        .tls_danger_accept_invalid_certs(cfg.tls_skip_verify);
    if cfg.address.scheme() == "http" {
        // No TLS at all; also spares loading the platform store (reqwest issue 2988).
        b = b.tls_certs_only(Vec::new());
    } else if let Some(path) = &cfg.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| VaultError::Setup { detail: format!("cannot read the CA file {}: {e}", path.display()) })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).ok().filter(|c| !c.is_empty()).ok_or_else(|| {
            VaultError::Setup { detail: format!("the CA file {} holds no PEM certificate", path.display()) }
        })?;
        b = b.tls_certs_only(certs);
    }
    b.build().map_err(|e| VaultError::Setup { detail: root_cause(&e) })
}

/// A plain JSON request, for endpoints whose answers vaultrs' types do not fit.
struct Raw {
    method: rustify::enums::RequestMethod,
    path: String,
    body: Option<Vec<u8>>,
}

impl rustify::Endpoint for Raw {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }
    fn method(&self) -> rustify::enums::RequestMethod {
        self.method.clone()
    }
    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(self.body.clone())
    }
}

/// The HTTP method of a [`Vault::raw`] request.
pub use rustify::enums::RequestMethod as Method;

impl Vault {
    /// `method path` with an optional JSON body; the whole JSON answer, `None` for 204.
    pub async fn raw(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        self.raw_with(op, self.default_backoff(), method, path, body).await
    }

    /// [`Vault::raw`] with its own pauses between retries (`auto_auth`'s, for auth requests).
    pub async fn raw_with(
        &self,
        op: &'static str,
        backoff: Backoff,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        self.request(op, backoff, method, path, body, false).await.map(|(_, v)| v)
    }

    /// [`Vault::raw`] that returns a 404 with its body (KV v2 answers a deleted latest
    /// version that way, with the version in the body) instead of an error.
    pub async fn raw_keep_404(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
    ) -> Result<(u16, Option<serde_json::Value>), VaultError> {
        self.request(op, self.default_backoff(), method, path, None, true).await
    }

    async fn request(
        &self,
        op: &'static str,
        backoff: Backoff,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        keep_404: bool,
    ) -> Result<(u16, Option<serde_json::Value>), VaultError> {
        use rustify::Endpoint;
        let body = body.map(|b| b.to_string().into_bytes());
        let parse = |bytes: &[u8]| -> Result<Option<serde_json::Value>, ClientError> {
            if bytes.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(bytes).map(Some).map_err(|source| ClientError::JsonParseError { source })
        };
        self.call_with(op, backoff, async |c| {
            let req = Raw { method: method.clone(), path: path.to_string(), body: body.clone() };
            match req.with_middleware(c.middle()).exec(c.http()).await {
                Ok(result) => Ok((200, parse(&result.raw())?)),
                Err(rustify::errors::ClientError::ServerResponseError { code: 404, content }) if keep_404 => {
                    Ok((404, parse(content.unwrap_or_default().as_bytes())?))
                }
                Err(e) => Err(api_error(e)),
            }
        })
        .await
    }
}

/// Vault's `{"errors": [...]}` on a non-2xx answer, as vaultrs itself reports it.
fn api_error(e: rustify::errors::ClientError) -> ClientError {
    if let rustify::errors::ClientError::ServerResponseError { code, content } = &e {
        let errors = content
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|v| v.get("errors").cloned())
            .and_then(|v| serde_json::from_value::<Vec<String>>(v).ok());
        if let Some(errors) = errors {
            return ClientError::APIError { code: *code, errors };
        }
    }
    ClientError::RestClientError { source: e }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Sorts a vaultrs error into what the caller must do about it.
fn classify(op: &'static str, timeout: Duration, e: ClientError) -> VaultError {
    use rustify::errors::ClientError as Rest;
    match e {
        ClientError::APIError { code, errors } => by_status(op, code, tidy_errors(&errors)),
        ClientError::RestClientError { source } => match source {
            Rest::RequestError { source, .. } | Rest::ResponseError { source } => network(op, timeout, &source),
            Rest::ServerResponseError { code, .. } => by_status(op, code, format!("HTTP {code}")),
            // Parse errors carry the body; only their generic text is kept.
            other => VaultError::Protocol { op, detail: other.to_string() },
        },
        ClientError::ResponseEmptyError => VaultError::Empty { op },
        other => VaultError::Protocol { op, detail: other.to_string() },
    }
}

fn by_status(op: &'static str, status: u16, detail: String) -> VaultError {
    match status {
        401 | 403 => VaultError::Denied { op, status, detail },
        429 | 500..=599 => {
            VaultError::Unreachable { op, status: Some(status), detail: format!("HTTP {status}: {detail}") }
        }
        _ => VaultError::Rejected { op, status, detail },
    }
}

fn network(op: &'static str, timeout: Duration, e: &anyhow::Error) -> VaultError {
    if let Some(tls) = find_tls(e.as_ref()) {
        return VaultError::Tls { op, detail: tls.to_string() };
    }
    let detail = match e.downcast_ref::<reqwest::Error>() {
        Some(r) if r.is_timeout() => format!("no answer within {}", humantime::format_duration(timeout)),
        Some(r) if r.is_connect() => format!("cannot connect: {}", root_cause(r)),
        Some(r) => root_cause(r),
        None => e.root_cause().to_string(),
    };
    VaultError::Unreachable { op, status: None, detail }
}

/// rustls' error, wherever hyper and std::io nested it.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    // io::Error::source() skips the error it wraps; get_ref() does not.
    if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
        && let Some(tls) = find_tls(inner)
    {
        return Some(tls);
    }
    e.source().and_then(find_tls)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Vault wraps messages as "1 error occurred:\n\t* permission denied\n\n".
fn tidy_errors(errors: &[String]) -> String {
    let parts: Vec<&str> = errors
        .iter()
        .flat_map(|e| e.lines())
        .map(|l| l.trim().trim_start_matches("* ").trim())
        // Drop the "1 error occurred:" header lines.
        .filter(|l| !(l.is_empty() || l.ends_with("occurred:") && l.contains("error")))
        .collect();
    if parts.is_empty() { "no detail".into() } else { parts.join("; ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_multierror_text_is_tidied() {
        let e = vec!["1 error occurred:\n\t* permission denied\n\n".to_string()];
        assert_eq!(tidy_errors(&e), "permission denied");
        assert_eq!(tidy_errors(&["lease is not renewable".into()]), "lease is not renewable");
        assert_eq!(tidy_errors(&[]), "no detail");
    }

    #[test]
    fn statuses_sort_into_kinds() {
        assert!(matches!(by_status("x", 403, String::new()), VaultError::Denied { .. }));
        assert!(matches!(by_status("x", 400, String::new()), VaultError::Rejected { .. }));
        let sealed = by_status("x", 503, String::new());
        assert!(sealed.is_transient() && sealed.is_retryable());
        let limited = by_status("x", 429, String::new());
        assert!(limited.is_transient() && !limited.is_retryable(), "a 4xx is never retried");
    }
}
