//! Loopback networking for the harness: a free port, this machine's non-loopback
//! address, and a minimal HTTP/1.0 client (no TLS, no redirects), enough to set up a
//! local OpenBao through its API.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An IPv4 address of this machine that is not loopback (to prove what crosses a network).
pub fn non_loopback_ipv4() -> std::net::Ipv4Addr {
    let mut found = None;
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        assert_eq!(libc::getifaddrs(&mut list), 0, "getifaddrs failed");
        let mut cur = list;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && found.is_none() {
                    found = Some(ip);
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    found.expect("this test needs a network interface with an IPv4 address other than loopback (`ip -4 addr`)")
}

/// One request: `method path` with an optional `X-Vault-Token` and JSON body.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub token: Option<&'a str>,
    pub body: Option<&'a Value>,
}

impl<'a> Call<'a> {
    /// `GET path` without a token.
    pub fn get(path: &'a str) -> Call<'a> {
        Call { method: "GET", path, token: None, body: None }
    }
}

/// Sends `call` to `host_port`, giving up after `timeout` for connecting and for each
/// read (a stopped server's kernel still accepts connections, but nothing answers);
/// returns the status and the JSON body (`Null` when there is none).
pub fn http(host_port: &str, call: Call, timeout: Duration) -> std::io::Result<(u16, Value)> {
    let addr = host_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host_port}: no address")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let body = call.body.map(|b| b.to_string()).unwrap_or_default();
    let mut req =
        format!("{} {} HTTP/1.0\r\nHost: {host_port}\r\nContent-Length: {}\r\n", call.method, call.path, body.len());
    if let Some(t) = call.token {
        req.push_str(&format!("X-Vault-Token: {t}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line"))?;
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}
