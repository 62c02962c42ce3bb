//! The real Claude Code CLI, offline: a mock Messages API (ANTHROPIC_BASE_URL) that
//! accepts a set of access tokens, and a CONNECT proxy (HTTPS_PROXY) that intercepts
//! TLS to platform.claude.com with a certificate from a CA made at test time
//! (NODE_EXTRA_CA_CERTS) and answers the token refresh. Every other host is refused,
//! so nothing leaves the machine.
//!
//! The CLI comes from scripts/install-claude-code.sh (a pinned npm package, cached
//! outside the repository); `CLAUDE_CODE_BIN` points at it.

use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::http1::{read_request, respond};
use crate::common::secrets::{random_secret, secret};

pub const PINNED_VERSION: &str = "2.1.197";

/// The installed CLI, or a loud failure naming the command that installs it.
pub fn claude_bin() -> PathBuf {
    let bin = std::env::var("CLAUDE_CODE_BIN").map(PathBuf::from).unwrap_or_else(|_| {
        panic!(
            "CLAUDE_CODE_BIN is not set: the real-CLI tests need Claude Code {PINNED_VERSION}.\n\
             Install it with: scripts/install-claude-code.sh (npm install @anthropic-ai/claude-code@{PINNED_VERSION}), \
             or run the suite with scripts/test.sh"
        )
    });
    assert!(bin.is_file(), "CLAUDE_CODE_BIN={} does not exist; run scripts/install-claude-code.sh", bin.display());
    bin
}

/// What the mock API and the token endpoint know and saw.
#[derive(Default)]
pub struct Backend {
    pub accepted_access: Mutex<HashSet<String>>,
    pub valid_refresh: Mutex<HashSet<String>>,
    /// Bearer tokens of every inference request, in order.
    pub bearers: Mutex<Vec<String>>,
    pub refreshes: AtomicUsize,
    pub refused: AtomicUsize,
    /// The newest (access, refresh) the token endpoint issued.
    pub last_issued: Mutex<Option<(String, String)>>,
    /// How long the token endpoint takes to answer.
    pub delay: Mutex<Duration>,
}

impl Backend {
    pub fn accept(&self, access: &str, refresh: &str) {
        self.accepted_access.lock().unwrap().insert(access.to_string());
        self.valid_refresh.lock().unwrap().insert(refresh.to_string());
    }
}

pub struct RealCli {
    pub backend: Arc<Backend>,
    pub api_url: String,
    pub proxy_url: String,
    pub ca_file: PathBuf,
}

impl RealCli {
    pub fn start(dir: &Path) -> RealCli {
        let backend = Arc::new(Backend::default());
        let api_url = start_api(backend.clone());
        let (ca_pem, tls) = tls_for_platform();
        let ca_file = dir.join("test-ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let proxy_url = start_proxy(backend.clone(), tls);
        RealCli { backend, api_url, proxy_url, ca_file }
    }

    /// The environment the CLI needs, offline and quiet.
    pub fn env(&self, home: &Path, config_dir: &Path) -> Vec<(String, String)> {
        [
            ("HOME", home.display().to_string()),
            ("CLAUDE_CONFIG_DIR", config_dir.display().to_string()),
            ("ANTHROPIC_BASE_URL", self.api_url.clone()),
            ("HTTPS_PROXY", self.proxy_url.clone()),
            ("NO_PROXY", "127.0.0.1,localhost".into()),
            ("NODE_EXTRA_CA_CERTS", self.ca_file.display().to_string()),
            ("DISABLE_TELEMETRY", "1".into()),
            ("DISABLE_AUTOUPDATER", "1".into()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// A fresh pair of Claude-shaped tokens, registered as secrets and accepted.
pub fn issue(backend: &Backend, tag: &str) -> (String, String) {
    let access = random_secret(&format!("sk-ant-oat01-{tag}-"));
    let refresh = random_secret(&format!("sk-ant-ort01-{tag}-"));
    backend.accept(&access, &refresh);
    (access, refresh)
}

// ------------------------------------------------------------------ the Messages API

fn start_api(backend: Arc<Backend>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let backend = backend.clone();
            std::thread::spawn(move || serve_api(conn, &backend));
        }
    });
    url
}

fn serve_api(conn: TcpStream, backend: &Backend) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let Some(req) = read_request(&mut r) else { return };
    if req.method == "HEAD" {
        respond(&mut w, "200 OK", "text/plain", "");
        return;
    }
    if req.method != "POST" || !req.path.starts_with("/v1/messages") {
        respond(
            &mut w,
            "404 Not Found",
            "application/json",
            r#"{"type":"error","error":{"type":"not_found_error","message":"not here"}}"#,
        );
        return;
    }
    let bearer = req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default().to_string();
    let oauth_beta = req.header("anthropic-beta").is_some_and(|v| v.contains("oauth-2025-04-20"));
    backend.bearers.lock().unwrap().push(bearer.clone());
    if !oauth_beta || !backend.accepted_access.lock().unwrap().contains(&bearer) {
        respond(
            &mut w,
            "401 Unauthorized",
            "application/json",
            r#"{"type":"error","error":{"type":"authentication_error","message":"Invalid bearer token"}}"#,
        );
        return;
    }
    let events = [
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"OK"}}"#,
        ),
        ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
        (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":1}}"#,
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ];
    let body: String = events.iter().map(|(e, d)| format!("event: {e}\ndata: {d}\n\n")).collect();
    respond(&mut w, "200 OK", "text/event-stream", &body);
}

// ------------------------------------------------------------------ the token endpoint

fn tls_for_platform() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.distinguished_name.push(DnType::CommonName, "claude-auth-sync test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut leaf = CertificateParams::new(vec!["platform.claude.com".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.distinguished_name.push(DnType::CommonName, "platform.claude.com");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca).unwrap();

    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain = vec![leaf_cert.der().clone(), ca.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca.pem(), Arc::new(config))
}

fn start_proxy(backend: Arc<Backend>, tls: Arc<rustls::ServerConfig>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (backend, tls) = (backend.clone(), tls.clone());
            std::thread::spawn(move || serve_proxy(conn, &backend, tls));
        }
    });
    url
}

fn serve_proxy(conn: TcpStream, backend: &Backend, tls: Arc<rustls::ServerConfig>) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn.try_clone().unwrap();
    let Some(req) = read_request(&mut r) else { return };
    if req.method != "CONNECT" || req.path != "platform.claude.com:443" {
        // Nothing else leaves the machine (api.anthropic.com's profile fetch, ...).
        let _ = w.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let _ = w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let server = rustls::ServerConnection::new(tls).unwrap();
    let mut stream = BufReader::new(rustls::StreamOwned::new(server, conn));
    let Some(req) = read_request(&mut stream) else { return };
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let presented = body["refresh_token"].as_str().unwrap_or_default().to_string();
    let delay = *backend.delay.lock().unwrap();
    std::thread::sleep(delay);
    let stream = stream.get_mut();
    if req.path != "/v1/oauth/token" || body["grant_type"] != "refresh_token" {
        respond(stream, "404 Not Found", "application/json", "{}");
        return;
    }
    // Single use, as the real endpoint: the presented refresh token dies either way.
    if !backend.valid_refresh.lock().unwrap().remove(&presented) {
        backend.refused.fetch_add(1, Ordering::SeqCst);
        respond(
            stream,
            "400 Bad Request",
            "application/json",
            r#"{"error":"invalid_grant","error_description":"Refresh token is invalid"}"#,
        );
        return;
    }
    let (access, refresh) = issue(backend, "real");
    let _ = secret(&access);
    backend.refreshes.fetch_add(1, Ordering::SeqCst);
    *backend.last_issued.lock().unwrap() = Some((access.clone(), refresh.clone()));
    let answer = json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": 28800,
        "token_type": "Bearer",
        "scope": "user:inference user:profile user:sessions:claude_code",
    });
    respond(stream, "200 OK", "application/json", &answer.to_string());
}
