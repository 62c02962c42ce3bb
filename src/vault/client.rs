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

use super::error::{VaultError, api_error, classify, root_cause};
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
        // Every attempt is one request to Vault, counted for the metrics.
        let attempt = move || async move {
            crate::report::counters::vault_request();
            request(client).await.map_err(|e| classify(op, timeout, e))
        };
        attempt
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

/// One JSON request, for endpoints whose answers vaultrs' types do not fit.
#[derive(Clone)]
pub struct Request {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
}

/// The HTTP method of a [`Request`].
pub use rustify::enums::RequestMethod as Method;

impl Request {
    pub fn new(method: Method, path: &str, body: Option<serde_json::Value>) -> Self {
        Request { method, path: path.to_string(), body: body.map(|b| b.to_string().into_bytes()) }
    }
    pub fn get(path: &str) -> Self {
        Request::new(Method::GET, path, None)
    }
    pub fn post(path: &str) -> Self {
        Request::new(Method::POST, path, None)
    }
    pub fn json(self, body: serde_json::Value) -> Self {
        Request { body: Some(body.to_string().into_bytes()), ..self }
    }
}

impl rustify::Endpoint for Request {
    type Response = serde_json::Value;
    const REQUEST_BODY_TYPE: rustify::enums::RequestType = rustify::enums::RequestType::JSON;
    const RESPONSE_BODY_TYPE: rustify::enums::ResponseType = rustify::enums::ResponseType::JSON;

    fn path(&self) -> String {
        self.path.clone()
    }
    fn method(&self) -> Method {
        self.method.clone()
    }
    fn body(&self) -> Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        Ok(self.body.clone())
    }
}

/// A JSON answer (`None` when empty, as for a 204), found or not.
pub enum Answer {
    Found(Option<serde_json::Value>),
    /// A 404 with its body: KV v2 answers a read of a deleted latest version that way,
    /// with the version in the body.
    NotFound(Option<serde_json::Value>),
}

impl Answer {
    pub fn into_body(self) -> Option<serde_json::Value> {
        match self {
            Answer::Found(body) | Answer::NotFound(body) => body,
        }
    }
}

/// What a 404 is to the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum On404 {
    Fail,
    Answer,
}

impl Vault {
    /// `method path` with an optional JSON body and the `vault.retry` policy; the whole
    /// JSON answer, `None` for 204.
    pub async fn raw(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        self.send(op, self.default_backoff(), Request::new(method, path, body)).await
    }

    /// `request` with its own pauses between retries (`auto_auth`'s, for auth requests).
    pub async fn send(
        &self,
        op: &'static str,
        backoff: Backoff,
        request: Request,
    ) -> Result<Option<serde_json::Value>, VaultError> {
        self.exchange(op, backoff, &request, On404::Fail).await.map(Answer::into_body)
    }

    /// `GET path`, where a 404 is an answer to read rather than an error.
    pub async fn get_or_not_found(&self, op: &'static str, path: &str) -> Result<Answer, VaultError> {
        self.exchange(op, self.default_backoff(), &Request::get(path), On404::Answer).await
    }

    async fn exchange(
        &self,
        op: &'static str,
        backoff: Backoff,
        request: &Request,
        on_404: On404,
    ) -> Result<Answer, VaultError> {
        use rustify::Endpoint;
        let parse = |bytes: &[u8]| -> Result<Option<serde_json::Value>, ClientError> {
            if bytes.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(bytes).map(Some).map_err(|source| ClientError::JsonParseError { source })
        };
        self.call_with(op, backoff, async |c| match request.clone().with_middleware(c.middle()).exec(c.http()).await {
            Ok(result) => Ok(Answer::Found(parse(&result.raw())?)),
            Err(rustify::errors::ClientError::ServerResponseError { code: 404, content })
                if on_404 == On404::Answer =>
            {
                Ok(Answer::NotFound(parse(content.unwrap_or_default().as_bytes())?))
            }
            Err(e) => Err(api_error(e)),
        })
        .await
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}
