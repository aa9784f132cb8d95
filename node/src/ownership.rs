//! One owner per data directory and per listening address (issue #14, Build 3).
//!
//! * The data directory: a lock file, `<data-dir>/.lock` (Kafka's name), held for the node's
//!   whole life with `flock(LOCK_EX)` — and an open-file-description write lock (`fcntl
//!   F_OFD_SETLK`) on the same file, because Kafka takes its `.lock` with `fcntl` record
//!   locks (Java's `FileChannel.tryLock`), which do not see `flock` locks. The kernel drops
//!   both when the descriptor is closed, so a crashed node never leaves a stale lock behind
//!   (the file itself stays, empty, as in Kafka). See `kernel-notes/ownership.md`.
//! * An address: every shard binds its listener with `SO_REUSEPORT`, so a second node on the
//!   same address would bind too and silently share the connections. Before the listeners
//!   bind, [`claim_address`] binds a probe socket *without* `SO_REUSEPORT` there: that fails
//!   with `EADDRINUSE` when anyone listens on the address (another sluice included), and
//!   otherwise yields the address to bind (port 0 resolved). The probe is closed and the
//!   listeners bind the same address; in the gap (microseconds) another process could take
//!   the port — with `SO_REUSEPORT` under the same user it would share it, otherwise our
//!   bind fails with "address in use". Not closed, only narrowed: nothing in the socket API
//!   lets a non-`SO_REUSEPORT` socket hand its port to a `SO_REUSEPORT` group.
//!
//! The listeners set `SO_REUSEADDR` as well as `SO_REUSEPORT` (glommio's `bind` sets only
//! the latter): the connections a node closes first linger in TIME_WAIT, and those inherit
//! the listener's flags; without `SO_REUSEADDR` on them the probe of the next start on the
//! same port would fail for a minute although nobody listens.

use std::fs::{File, OpenOptions};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, Socket, Type};

/// The lock file's name in the data directory (Kafka's).
pub const LOCK_FILE: &str = ".lock";

/// The listen backlog of every listener (glommio's `bind` uses the same).
const BACKLOG: i32 = 1024;

/// The data directory's lock, held while this value lives (the kernel releases it when
/// the descriptor closes, including when the process dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and locks `dir/.lock`. Fails, having written nothing, when
    /// another process holds the lock (an existing lock file is opened, not modified).
    pub fn acquire(dir: &Path) -> Result<DirLock, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|e| format!("opening the lock file {}: {e}", path.display()))?;
        let in_use = |how: &str| {
            format!(
                "data directory {} is in use by another process: its lock file {} is locked ({how}); \
                 stop that node (`fuser -v {}` names it) or choose another --data-dir",
                dir.display(),
                path.display(),
                path.display()
            )
        };
        // SAFETY: flock(2) on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => in_use("flock"),
                _ => format!("locking {}: {e}", path.display()),
            });
        }
        // SAFETY: an all-zero `struct flock` is valid; the fields that matter are set below.
        let mut range: libc::flock = unsafe { std::mem::zeroed() };
        range.l_type = libc::F_WRLCK as libc::c_short;
        range.l_whence = libc::SEEK_SET as libc::c_short;
        (range.l_start, range.l_len) = (0, 0); // the whole file, as Kafka's tryLock()
                                               // SAFETY: fcntl(2) reads `range`, which outlives the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &range) } != 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EACCES) => in_use("fcntl record lock, as Kafka takes it"),
                _ => format!("locking {} (fcntl): {e}", path.display()),
            });
        }
        Ok(DirLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long a start waits for an address held by a process that has just exited (see
/// `claim_address`) before it calls the address taken.
const ADDRESS_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Fails when another process listens on (or has bound) `addr`; otherwise the address the
/// listeners should bind (`addr` with port 0 replaced by a free port). `what` names the
/// listener and `flag` the option that moves it, for the message.
pub fn claim_address(addr: &str, what: &str, flag: &str) -> Result<SocketAddr, String> {
    let target = resolve(addr)?;
    let started = std::time::Instant::now();
    let probe = loop {
        let probe = socket_for(&target).map_err(|e| format!("{what} {addr}: {e}"))?;
        probe.set_reuse_address(true).map_err(|e| format!("{what} {addr}: {e}"))?;
        match probe.bind(&target.into()) {
            Ok(()) => break probe,
            // A node that has just exited (SIGKILL, then an immediate restart) can still hold
            // its listener for a moment: the kernel tears its io_uring down after the exit,
            // and the accept pending there keeps the socket listening until then.
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) && started.elapsed() < ADDRESS_GRACE => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                return Err(format!(
                    "{what} {addr} is already in use by another process (another sluice, or Kafka?); \
                     stop it or choose another address with {flag} HOST:PORT"
                ))
            }
            Err(e) => return Err(format!("binding {what} {addr}: {e}")),
        }
    };
    let bound = probe
        .local_addr()
        .map_err(|e| format!("{what} {addr}: {e}"))?
        .as_socket()
        .ok_or_else(|| format!("{what} {addr}: not an IP address"))?;
    Ok(bound) // the probe closes here
}

/// A listening glommio socket on `addr` with `SO_REUSEADDR` (see the module comment) and,
/// when `reuse_port` (the Kafka listener: one socket per shard), `SO_REUSEPORT`. Call on the
/// executor that will accept on it.
pub fn listen(addr: SocketAddr, reuse_port: bool) -> io::Result<glommio::net::TcpListener> {
    let socket = socket_for(&addr)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket that we give away whole.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

fn socket_for(addr: &SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(domain, Type::STREAM, Some(Protocol::TCP)) // close-on-exec by default
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("resolving {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr} resolves to no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = TempDir::new("dirlock");
        let first = DirLock::acquire(dir.path()).expect("first lock");
        assert_eq!(first.path(), dir.path().join(LOCK_FILE));
        // A second open file description in the same process conflicts for flock and OFD locks.
        let err = DirLock::acquire(dir.path()).expect_err("second lock");
        assert!(err.contains(&dir.path().display().to_string()) && err.contains(".lock"), "{err}");
        drop(first);
        DirLock::acquire(dir.path()).expect("lock again after release");
    }

    #[test]
    fn an_address_someone_listens_on_is_refused_and_port_zero_is_resolved() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap().to_string();
        let err = claim_address(&addr, "Kafka listener", "--listen").expect_err("in use");
        assert!(err.contains(&addr) && err.contains("--listen"), "{err}");
        let got = claim_address("127.0.0.1:0", "Kafka listener", "--listen").expect("a free port");
        assert_ne!(got.port(), 0);
    }
}
