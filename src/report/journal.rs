//! journald's native protocol: one datagram of `KEY=value` fields to its socket, so
//! the report carries `SYSLOG_IDENTIFIER`, `PRIORITY` and fields a Loki rule can match.
//! Written here rather than through tracing-journald, whose socket path is fixed:
//! the tests capture the journal on a socket of their own.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

/// Sends one entry; fields are `(NAME, value)` with NAME in `[A-Z0-9_]`.
pub fn send(socket: &Path, fields: &[(&str, &str)]) -> io::Result<()> {
    let mut msg = Vec::new();
    for (k, v) in fields {
        msg.extend_from_slice(k.as_bytes());
        if v.contains('\n') {
            // The binary form: NAME\n, the length as little-endian u64, the bytes, \n.
            msg.push(b'\n');
            msg.extend_from_slice(&(v.len() as u64).to_le_bytes());
        } else {
            msg.push(b'=');
        }
        msg.extend_from_slice(v.as_bytes());
        msg.push(b'\n');
    }
    let sock = UnixDatagram::unbound()?;
    // A full or stuck journal must never hold up the run: give up instead of waiting.
    sock.set_nonblocking(true)?;
    sock.send_to(&msg, socket).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_arrive_in_the_native_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        send(&path, &[("MESSAGE", "status=OK"), ("PRIORITY", "6"), ("X", "a\nb")]).unwrap();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let mut want = b"MESSAGE=status=OK\nPRIORITY=6\nX\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"a\nb\n");
        assert_eq!(&buf[..n], want.as_slice());
    }
}
