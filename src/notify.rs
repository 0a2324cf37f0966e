//! systemd's readiness protocol (`sd_notify`). Under `Type=notify` systemd
//! passes a datagram socket in `$NOTIFY_SOCKET` and counts the service as
//! started only when it gets `READY=1`: units ordered after shoal then wait
//! until the port accepts, not merely until the process exists. Without the
//! variable (a shell, Docker, `Type=simple`) every call does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;

/// The variable systemd sets.
pub const SOCKET_ENV: &str = "NOTIFY_SOCKET";

/// Sends `state` (`READY=1`, `STOPPING=1`, ...) to `$NOTIFY_SOCKET`: a
/// filesystem path, or an abstract socket when it starts with `@`.
pub fn notify(state: &str) -> io::Result<()> {
    let Some(target) = std::env::var_os(SOCKET_ENV) else {
        return Ok(());
    };
    send(target.as_encoded_bytes(), state)
}

fn send(target: &[u8], state: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    let addr = match target.strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)?,
        None if target.first() == Some(&b'/') => {
            std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(target))?
        }
        // systemd also knows vsock: addresses (for VMs); not ours to serve.
        None => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "{SOCKET_ENV}={} is neither a path nor an abstract socket",
                    String::from_utf8_lossy(target)
                ),
            ))
        }
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// `notify`, with a failure logged rather than returned: readiness is worth
/// a warning, never a refusal to serve.
pub fn notify_or_warn(state: &str) {
    if let Err(e) = notify(state) {
        eprintln!("shoal: warning: cannot notify systemd ({state}): {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(path.as_os_str().as_encoded_bytes(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("shoal-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        send(format!("@{name}").as_bytes(), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn an_address_of_another_kind_is_an_error() {
        assert!(send(b"vsock:2:1234", "READY=1").is_err());
    }
}
