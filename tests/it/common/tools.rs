//! Other tools whose per-user secrets the agent keeps (docs/examples/): stand-ins for
//! their CLIs (scripts/fake-codex, scripts/fake-gcloud) in a scratch home, and the one
//! mock server they call, which accepts only the credentials a test gave it. Like the
//! Messages API for Claude Code, only the tools' endpoints are mocked: the stand-ins
//! make real HTTP requests, so a probe through them is a real request, not a status
//! command.

use std::collections::HashSet;
use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::common::http1::{read_request, respond};
use crate::common::secrets::random_secret;

/// Codex's inference endpoint with a ChatGPT login, under the mock's address.
const CODEX_RESPONSES: &str = "/backend-api/codex/responses";
/// Google's OAuth token endpoint, under the mock's address.
const GOOGLE_TOKEN: &str = "/token";

/// What the mock accepts, and every request it saw.
#[derive(Default)]
pub struct Endpoint {
    accepted: Mutex<HashSet<String>>,
    /// (path, the credential it carried, whether it was accepted), in order.
    pub seen: Mutex<Vec<(String, String, bool)>>,
}

impl Endpoint {
    /// Makes the mock accept this bearer token (Codex) or refresh token (gcloud).
    pub fn accept(&self, credential: &str) {
        self.accepted.lock().unwrap().insert(credential.to_string());
    }

    /// The requests to `path` so far: (credential, accepted).
    pub fn requests_to(&self, path: &str) -> Vec<(String, bool)> {
        self.seen.lock().unwrap().iter().filter(|(p, ..)| p == path).map(|(_, c, ok)| (c.clone(), *ok)).collect()
    }
}

/// A scratch home with the stand-ins on PATH and the mock they call.
pub struct Tools {
    pub home: PathBuf,
    pub bin: PathBuf,
    pub endpoint: Arc<Endpoint>,
    url: String,
}

impl Tools {
    /// `root/home` (0700) and `root/tools-bin` with `codex` and `gcloud`.
    pub fn new(root: &Path) -> Tools {
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        let bin = root.join("tools-bin");
        std::fs::create_dir_all(&bin).unwrap();
        for tool in ["codex", "gcloud"] {
            let script = format!("{}/scripts/fake-{tool}", env!("CARGO_MANIFEST_DIR"));
            std::os::unix::fs::symlink(script, bin.join(tool)).unwrap();
        }
        let endpoint = Arc::new(Endpoint::default());
        let url = serve(endpoint.clone());
        Tools { home, bin, endpoint, url }
    }

    /// The environment the stand-ins need: the scratch home, the mock's URLs, and PATH
    /// with the stand-ins first, then `more_bins` (another stand-in's, say).
    pub fn env(&self, more_bins: &[&Path]) -> Vec<(String, String)> {
        let path = std::iter::once(self.bin.as_path())
            .chain(more_bins.iter().copied())
            .map(|p| p.display().to_string())
            .chain(std::env::var("PATH").ok())
            .collect::<Vec<_>>()
            .join(":");
        vec![
            ("HOME".into(), self.home.display().to_string()),
            ("FAKE_CODEX_BASE_URL".into(), self.url.clone()),
            ("FAKE_GCLOUD_TOKEN_URL".into(), format!("{}{GOOGLE_TOKEN}", self.url)),
            ("PATH".into(), path),
        ]
    }

    /// `~/.codex/auth.json`.
    pub fn codex_auth(&self) -> PathBuf {
        self.home.join(".codex/auth.json")
    }

    /// `~/.config/gcloud/application_default_credentials.json`.
    pub fn gcloud_adc(&self) -> PathBuf {
        self.home.join(".config/gcloud/application_default_credentials.json")
    }

    /// Writes `doc` to `path` (0600), making its directory (0700).
    pub fn write(&self, path: &Path, doc: &Value) {
        let dir = path.parent().unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn read(&self, path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// Codex requests so far: (bearer, accepted).
    pub fn codex_requests(&self) -> Vec<(String, bool)> {
        self.endpoint.requests_to(CODEX_RESPONSES)
    }

    /// Token refreshes so far: (refresh token, accepted).
    pub fn google_refreshes(&self) -> Vec<(String, bool)> {
        self.endpoint.requests_to(GOOGLE_TOKEN)
    }
}

/// Codex's `tokens` object of a ChatGPT login, with fresh secrets; the mock accepts
/// its access token only when `accepted`.
pub fn codex_tokens(endpoint: &Endpoint, accepted: bool) -> Value {
    let access = random_secret("eyJhbGciOiJSUzI1NiJ9.codex-access-");
    if accepted {
        endpoint.accept(&access);
    }
    json!({
        "id_token": random_secret("eyJhbGciOiJSUzI1NiJ9.codex-id-"),
        "access_token": access,
        "refresh_token": random_secret("rt_codex-"),
        "account_id": "5f0c5d5e-6a3e-4b8e-9c1d-acc0unt1d000"
    })
}

/// `~/.codex/auth.json` as Codex writes it after a ChatGPT login.
pub fn codex_auth_json(tokens: &Value) -> Value {
    json!({ "OPENAI_API_KEY": null, "tokens": tokens, "last_refresh": "2026-11-30T09:15:02.123456Z" })
}

/// gcloud's application default credentials of a user login; the mock accepts its
/// refresh token only when `accepted`.
pub fn gcloud_adc(endpoint: &Endpoint, accepted: bool) -> Value {
    let refresh = random_secret("1//0g-gcloud-refresh-");
    if accepted {
        endpoint.accept(&refresh);
    }
    json!({
        "account": "",
        "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
        "client_secret": random_secret("d-FL95Q19q7MQmFpd7hHD0Ty-"),
        "quota_project_id": "workstation-dev",
        "refresh_token": refresh,
        "type": "authorized_user",
        "universe_domain": "googleapis.com"
    })
}

fn serve(endpoint: Arc<Endpoint>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let endpoint = endpoint.clone();
            std::thread::spawn(move || answer(conn, &endpoint));
        }
    });
    url
}

fn answer(conn: TcpStream, endpoint: &Endpoint) {
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let Some(req) = read_request(&mut r) else { return };
    let credential = match req.path.as_str() {
        CODEX_RESPONSES => req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(String::from),
        GOOGLE_TOKEN => {
            url::form_urlencoded::parse(&req.body).find(|(k, _)| k == "refresh_token").map(|(_, v)| v.into_owned())
        }
        _ => {
            respond(&mut w, "404 Not Found", "application/json", r#"{"error":"not_found"}"#);
            return;
        }
    }
    .unwrap_or_default();
    let ok = req.method == "POST" && endpoint.accepted.lock().unwrap().contains(&credential);
    endpoint.seen.lock().unwrap().push((req.path.clone(), credential, ok));
    match (req.path.as_str(), ok) {
        (CODEX_RESPONSES, true) => respond(
            &mut w,
            "200 OK",
            "application/json",
            r#"{"id":"resp_1","object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"OK"}]}]}"#,
        ),
        (CODEX_RESPONSES, false) => respond(
            &mut w,
            "401 Unauthorized",
            "application/json",
            r#"{"error":{"message":"Your authentication token is not valid.","code":"token_invalid"}}"#,
        ),
        (_, true) => {
            let access = random_secret("ya29.gcloud-access-");
            let body = json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"});
            respond(&mut w, "200 OK", "application/json", &body.to_string())
        }
        (_, false) => respond(
            &mut w,
            "400 Bad Request",
            "application/json",
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        ),
    }
}
