//! An HTTP proxy between the agent and a real OpenBao that injects one fault from a
//! chosen request on: answer 500 or 503 ("sealed"), stall past the client's timeout,
//! drop the connection (a stopped server), or run an action first (revoke the token,
//! write a newer version) and then forward.

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::http1::{Request, read_request, respond};

/// What to do with a matching request and every later one (actions fire once).
#[derive(Clone)]
pub enum Fault {
    Status(u16, &'static str),
    Stall,
    Drop,
    Before(Arc<dyn Fn() + Send + Sync>),
}

/// Requests are matched by method and path prefix (after `/v1/`).
pub struct Rule {
    pub method: &'static str,
    pub path_prefix: String,
    pub fault: Fault,
}

pub struct FaultProxy {
    pub addr: String,
}

impl FaultProxy {
    pub fn start(upstream: &str, rule: Rule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new(State { rule, triggered: false, acted: false }));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (upstream, state) = (upstream.clone(), state.clone());
                std::thread::spawn(move || serve(conn, &upstream, &state));
            }
        });
        FaultProxy { addr }
    }
}

/// The rule, whether it has triggered, and whether its one-shot action has run.
struct State {
    rule: Rule,
    triggered: bool,
    acted: bool,
}

/// Answers one request (one per connection keeps the proxy simple; clients reconnect).
fn serve(conn: TcpStream, upstream: &str, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else { return };
    let fault = {
        let mut st = state.lock().unwrap();
        let matches =
            st.rule.method == req.method && req.path.trim_start_matches("/v1/").starts_with(&st.rule.path_prefix);
        st.triggered |= matches;
        // Once triggered, a fault holds for every later request (retries included); an
        // action runs once, before the request that triggers it.
        match &st.rule.fault {
            Fault::Before(_) if st.acted || !matches => None,
            Fault::Before(f) => {
                let f = f.clone();
                st.acted = true;
                Some(Fault::Before(f))
            }
            f if st.triggered => Some(f.clone()),
            _ => None,
        }
    };
    let mut out = conn;
    match fault {
        Some(Fault::Status(code, msg)) => {
            respond(&mut out, &format!("{code} Fault"), "application/json", &format!("{{\"errors\":[\"{msg}\"]}}"))
        }
        Some(Fault::Stall) => std::thread::sleep(Duration::from_secs(30)),
        Some(Fault::Drop) => {}
        Some(Fault::Before(action)) => {
            action();
            forward(upstream, &req, &mut out)
        }
        None => forward(upstream, &req, &mut out),
    }
}

/// Sends `req` upstream on a connection of its own and relays the answer.
fn forward(upstream: &str, req: &Request, out: &mut TcpStream) {
    let Ok(mut up) = TcpStream::connect(upstream) else { return };
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    for (k, v) in &req.headers {
        // The body is re-sent whole, on a connection that closes after the answer.
        if !["connection", "content-length", "transfer-encoding"].contains(&k.to_ascii_lowercase().as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", req.body.len()));
    let _ = up.write_all(head.as_bytes());
    let _ = up.write_all(&req.body);
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    let _ = out.write_all(&resp);
}
