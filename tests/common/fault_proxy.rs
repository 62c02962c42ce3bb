//! An HTTP proxy between the agent and a real OpenBao that injects one fault from a
//! chosen request on: answer 500 or 503 ("sealed"), stall past the client's timeout,
//! drop the connection (a stopped server), or run an action first (revoke the token,
//! write a newer version) and then forward.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// `METHOD path -> status` of every request seen ("-" when not answered).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl FaultProxy {
    pub fn start(upstream: &str, rule: Rule) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let state = Arc::new(Mutex::new((rule, false)));
        let seen = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (upstream, state, seen) = (upstream.clone(), state.clone(), seen.clone());
                std::thread::spawn(move || serve(conn, &upstream, &state, &seen));
            }
        });
        FaultProxy { addr, log }
    }
}

fn serve(conn: TcpStream, upstream: &str, state: &Mutex<(Rule, bool)>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    {
        let Some((method, path, head, body)) = read_request(&mut reader) else { return };
        let fault = {
            let mut st = state.lock().unwrap();
            let matches = st.0.method == method && path.trim_start_matches("/v1/").starts_with(&st.0.path_prefix);
            if matches {
                st.1 = true;
            }
            // Once triggered, the fault holds for every later request (retries included),
            // except a one-shot action.
            match (&st.0.fault, st.1, matches) {
                (Fault::Before(f), _, true) => {
                    let f = f.clone();
                    st.0.fault = Fault::Status(0, "");
                    Some(Fault::Before(f))
                }
                (Fault::Status(0, _), _, _) => None,
                (f, true, _) => Some(f.clone()),
                _ => None,
            }
        };
        let mut out = conn.try_clone().unwrap();
        let status = match fault {
            Some(Fault::Status(code, msg)) => {
                let body = format!("{{\"errors\":[\"{msg}\"]}}");
                let _ = write!(
                    out,
                    "HTTP/1.1 {code} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                code.to_string()
            }
            Some(Fault::Stall) => {
                std::thread::sleep(Duration::from_secs(30));
                "-".into()
            }
            Some(Fault::Drop) => "-".into(),
            Some(Fault::Before(action)) => {
                action();
                forward(upstream, &head, &body, &mut out)
            }
            None => forward(upstream, &head, &body, &mut out),
        };
        // One request per connection keeps the proxy simple; clients reconnect.
        log.lock().unwrap().push(format!("{method} {path} -> {status}"));
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, String, String, Vec<u8>)> {
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        // Hop-by-hop: the proxy speaks one request per connection.
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    let mut first = head.lines().next()?.split_whitespace();
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    Some((method, path, head, body))
}

fn forward(upstream: &str, head: &str, body: &[u8], out: &mut TcpStream) -> String {
    let Ok(mut up) = TcpStream::connect(upstream) else { return "-".into() };
    let _ = up.write_all(head.as_bytes());
    let _ = up.write_all(b"Connection: close\r\n\r\n");
    let _ = up.write_all(body);
    let mut resp = Vec::new();
    let _ = up.read_to_end(&mut resp);
    let status = String::from_utf8_lossy(&resp).split_whitespace().nth(1).unwrap_or("-").to_string();
    let _ = out.write_all(&resp);
    status
}
