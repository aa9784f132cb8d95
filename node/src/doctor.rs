//! `sluice doctor`: checks this host against what the node asks of it (`kernel-notes/`) and
//! names, one line per check, what it found and what to do about it.
//!
//! A line is `STATUS  CHECK  what was found[ → what to do]`, STATUS being `ok`, `warn` or
//! `FAIL`. FAIL: the node will not start (or not work) on this host as it is. warn: it runs,
//! but pays in latency, throughput or data safety, or depends on something fragile. The exit
//! status is 1 when any check FAILs, else 0.
//!
//! Every /proc and /sys read goes through [`HostFiles`], rooted at `/` or at
//! `$SLUICE_DOCTOR_ROOT` (tests feed fake trees that way). What only the kernel itself can
//! answer — `uname`, rlimits, capabilities, `io_uring_setup`, `statfs`, the affinity mask —
//! comes from real syscalls and ignores that root.
//!
//! Each check is a pure function from what was read to a [`Finding`], so unit tests can walk
//! them with made-up inputs; [`run_checks`] does the reading.

use crate::config::BrokerConfig;
use crate::runtime::IO_MEMORY_BYTES;
use crate::server::parse_cores;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Environment variable that moves the root of every /proc and /sys read (tests only).
pub const ROOT_ENV: &str = "SLUICE_DOCTOR_ROOT";

/// glommio's `MIN_MEMLOCK_LIMIT`: below this soft RLIMIT_MEMLOCK it builds no executor.
const MEMLOCK_GLOMMIO_MIN_BYTES: u64 = 512 << 10;
/// What `runtime::raise_memlock_limit` lifts the soft limit to at start (its `WANT_BYTES`).
const MEMLOCK_NODE_RAISE_BYTES: u64 = 64 << 20;
/// Rings per shard that register `io_memory` (main, latency, poll; write-path.md §5).
const RINGS_PER_SHARD: u64 = 3;
/// Below this many open files a busy node runs out (connections, partitions, segments):
/// the common service default that Kafka's own docs suggest at least.
const NOFILE_RECOMMENDED: u64 = 65536;
/// Descriptors per segment: its `.log` (the index files are opened only to be written;
/// `log::segment::IndexFiles`).
const FDS_PER_SEGMENT: u64 = 1;
/// Descriptors per shard besides partitions: three rings, their eventfds, the listener,
/// timers and slack. An estimate, generous on purpose.
const FDS_PER_SHARD: u64 = 16;
/// glommio's README floor; it covers `IORING_OP_SPLICE` (write-path.md §4).
const KERNEL_FLOOR: (u32, u32) = (5, 8);
/// `IORING_REGISTER_PROBE` and the ops glommio probes for landed here.
const KERNEL_GLOMMIO_PROBE: (u32, u32) = (5, 6);
/// From here ring memory is charged to the memory cgroup instead of RLIMIT_MEMLOCK.
const KERNEL_RING_MEMCG: (u32, u32) = (5, 12);
/// IRQs listed per interface before the line elides the rest.
const IRQS_SHOWN_MAX: usize = 8;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        })
    }
}

/// One printed line.
#[derive(Clone, Debug)]
pub struct Finding {
    pub status: Status,
    /// Short, stable name of the check (tests and scripts grep for it).
    pub check: &'static str,
    /// What was found, in words.
    pub found: String,
    /// What to do, when the status is not ok: a command or a setting.
    pub advice: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, found: impl Into<String>) -> Finding {
        Finding { status: Status::Ok, check, found: found.into(), advice: None }
    }

    fn warn(check: &'static str, found: impl Into<String>, advice: impl Into<String>) -> Finding {
        Finding { status: Status::Warn, check, found: found.into(), advice: Some(advice.into()) }
    }

    fn fail(check: &'static str, found: impl Into<String>, advice: impl Into<String>) -> Finding {
        Finding { status: Status::Fail, check, found: found.into(), advice: Some(advice.into()) }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4}  {:<17} {}", self.status, self.check, self.found)?;
        if let Some(advice) = &self.advice {
            write!(f, " → {advice}")?;
        }
        Ok(())
    }
}

/// The reader of /proc and /sys, rooted at `/` or `$SLUICE_DOCTOR_ROOT`.
pub struct HostFiles {
    root: PathBuf,
}

impl HostFiles {
    pub fn at(root: impl Into<PathBuf>) -> HostFiles {
        HostFiles { root: root.into() }
    }

    pub fn from_env() -> HostFiles {
        HostFiles::at(std::env::var_os(ROOT_ENV).map_or_else(|| PathBuf::from("/"), PathBuf::from))
    }

    fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The file's text, trimmed; `None` when it is absent or unreadable.
    pub fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path(path)).ok().map(|s| s.trim().to_string())
    }

    pub fn read_number(&self, path: &str) -> Option<i64> {
        self.read(path)?.parse().ok()
    }

    /// Names in a directory, sorted; empty when it is absent.
    pub fn list(&self, path: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(path))
            .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    pub fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }

    /// The last component of a symlink's target (`device -> ../../../virtio2` gives `virtio2`).
    pub fn link_name(&self, path: &str) -> Option<String> {
        let target = std::fs::read_link(self.path(path)).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }
}

/// `sluice doctor` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub data_dir: PathBuf,
    /// Shard cores, as the node would pick them.
    pub cores: Vec<usize>,
}

pub const USAGE: &str = "\
USAGE:
    sluice doctor [--data-dir DIR] [--cores LIST]

Checks this host for what the node needs: kernel and io_uring, memlock and open-file limits,
the data directory's filesystem, transparent huge pages, CPU governor, NIC interrupts and
NUMA placement of the shard cores. One line per check (ok / warn / FAIL) with advice; exits 1
when any check FAILs.

    --data-dir DIR   the node's data directory (default ./data)
    --cores LIST     the node's shard cores, e.g. 0-3 or 0,2 (default: all, as the node)
";

/// `Ok(None)`: help was asked for.
pub fn parse_args(args: &[&str]) -> Result<Option<Options>, String> {
    let mut data_dir = PathBuf::from("./data");
    let mut cores = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().copied().ok_or_else(|| format!("{flag} needs a value"));
        match *flag {
            "--data-dir" => data_dir = PathBuf::from(value()?),
            "--cores" => cores = Some(parse_cores(value()?)?),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    // The node's own default (main.rs): cores 0..available_parallelism.
    let cores = cores.unwrap_or_else(|| (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect());
    Ok(Some(Options { data_dir, cores }))
}

/// The `sluice doctor` command: prints one line per check, then a summary.
pub fn main(args: &[&str]) -> ExitCode {
    let options = match parse_args(args) {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sluice doctor: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let findings = run_checks(&HostFiles::from_env(), &options);
    for finding in &findings {
        println!("{finding}");
    }
    let count = |status| findings.iter().filter(|f| f.status == status).count();
    let (warn, fail) = (count(Status::Warn), count(Status::Fail));
    println!("doctor: {} ok, {warn} warn, {fail} FAIL", count(Status::Ok));
    if fail > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads the host and runs every check, in the order they are printed.
pub fn run_checks(host: &HostFiles, options: &Options) -> Vec<Finding> {
    let release = uname_release();
    let kernel = parse_kernel_version(&release);
    let caps = Caps::of_this_process();
    let disabled = host.read_number("proc/sys/kernel/io_uring_disabled");
    let group = host.read_number("proc/sys/kernel/io_uring_group");
    let in_group = group.is_some_and(|g| g >= 0 && process_in_group(g as libc::gid_t));
    let seccomp = host.read("proc/self/status").and_then(|s| seccomp_mode(&s));
    let online = host.read("sys/devices/system/cpu/online").map(|s| parse_cpulist(&s));
    let (memlock_soft, memlock_hard) = rlimit(libc::RLIMIT_MEMLOCK);
    let (nofile_soft, nofile_hard) = rlimit(libc::RLIMIT_NOFILE);
    let shards = options.cores.len() as u64;
    let (fds_needed, fds_detail) = nofile_need(&options.data_dir, shards, &BrokerConfig::default());
    let thp = "sys/kernel/mm/transparent_hugepage";
    vec![
        kernel_finding(&release),
        io_uring_finding(&probe_io_uring(), disabled, seccomp),
        io_uring_disabled_finding(disabled, group, caps.sys_admin || in_group),
        memlock_finding(memlock_soft, memlock_hard, caps, shards),
        nofile_finding(nofile_soft, nofile_hard, fds_needed, &fds_detail),
        cores_finding(&options.cores, online.as_deref(), allowed_cores().as_deref()),
        filesystem_finding(&inspect_data_dir(&options.data_dir), kernel),
        thp_finding(host.read(&format!("{thp}/enabled")).as_deref(), host.read(&format!("{thp}/defrag")).as_deref()),
        cpufreq_finding(&governors(host, &options.cores)),
        nic_irq_finding(&nic_irqs(host), &options.cores, online.as_deref()),
        numa_finding(&numa_nodes(host), &options.cores),
        writeback_finding(host),
    ]
}

// ---------------------------------------------------------------------------------------
// Kernel version

fn uname_release() -> String {
    // SAFETY: uname fills the struct we pass; `release` is NUL-terminated on success.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return String::new();
        }
        CStr::from_ptr(uts.release.as_ptr()).to_string_lossy().into_owned()
    }
}

/// `6.18.44-fc-v1300` → (6, 18).
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor_text = parts.next()?;
    let digits = minor_text.find(|c: char| !c.is_ascii_digit()).unwrap_or(minor_text.len());
    Some((major, minor_text[..digits].parse().ok()?))
}

pub fn kernel_finding(release: &str) -> Finding {
    const CHECK: &str = "kernel";
    let upgrade = "upgrade to Linux ≥ 5.8 (the node is developed on 6.18)";
    match parse_kernel_version(release) {
        None => Finding::warn(CHECK, format!("cannot read the kernel version from {release:?}"), upgrade),
        Some(v) if v < KERNEL_GLOMMIO_PROBE => Finding::fail(
            CHECK,
            format!("Linux {release}: older than 5.6, io_uring lacks the probe and ops glommio needs"),
            upgrade,
        ),
        Some(v) if v < KERNEL_FLOOR => Finding::warn(
            CHECK,
            format!("Linux {release}: below 5.8, the floor glommio asks for (IORING_OP_SPLICE is 5.7)"),
            upgrade,
        ),
        Some(v) => {
            let mut found = format!("Linux {release} (the node needs ≥ 5.8)");
            if v < KERNEL_RING_MEMCG {
                found.push_str("; before 5.12 io_uring rings also count against RLIMIT_MEMLOCK");
            }
            Finding::ok(CHECK, found)
        }
    }
}

// ---------------------------------------------------------------------------------------
// io_uring

/// The io_uring opcodes the node submits through glommio, by their kernel numbers (`enum
/// io_uring_op` in include/uapi/linux/io_uring.h, a stable ABI). `required`: in glommio's
/// start-up probe (`GLOMMIO_URING_OPS`, glommio-ng 0.12): without one no executor is built.
/// SPLICE is not probed by glommio; without it zero-copy fetch fails at its first use.
const URING_OPS: &[(&str, u8, bool)] = &[
    ("NOP", 0, true),
    ("READV", 1, true),
    ("WRITEV", 2, true),
    ("FSYNC", 3, true),
    ("READ_FIXED", 4, true),
    ("WRITE_FIXED", 5, true),
    ("POLL_ADD", 6, true),
    ("POLL_REMOVE", 7, true),
    ("SENDMSG", 9, true),
    ("RECVMSG", 10, true),
    ("TIMEOUT", 11, true),
    ("TIMEOUT_REMOVE", 12, true),
    ("ACCEPT", 13, true),
    ("ASYNC_CANCEL", 14, true),
    ("LINK_TIMEOUT", 15, true),
    ("CONNECT", 16, true),
    ("FALLOCATE", 17, true),
    ("OPENAT", 18, true),
    ("CLOSE", 19, true),
    ("STATX", 21, true),
    ("READ", 22, true),
    ("WRITE", 23, true),
    ("SEND", 26, true),
    ("RECV", 27, true),
    ("SPLICE", 30, false),
];

/// `io_uring_register` opcode that fills a `struct io_uring_probe`.
const IORING_REGISTER_PROBE: libc::c_uint = 8;
/// `struct io_uring_probe_op` entries asked for (the kernel clamps to its last op).
const PROBE_OPS_COUNT: usize = 256;
/// `IO_URING_OP_SUPPORTED` in a probe entry's flags.
const IO_URING_OP_SUPPORTED: u16 = 1;

/// What creating a ring and probing it gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UringProbe {
    /// `io_uring_setup` failed with this errno.
    SetupFailed(i32),
    /// The ring exists; `IORING_REGISTER_PROBE` failed with this errno.
    ProbeFailed(i32),
    /// Supported opcodes, indexed by opcode.
    Probed(Vec<bool>),
}

/// Creates a one-entry ring with the raw syscall, probes it and closes it.
pub fn probe_io_uring() -> UringProbe {
    // struct io_uring_params: 120 bytes, zeroed = no flags; the kernel fills the offsets.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup writes at most sizeof(struct io_uring_params) = 120 bytes.
    let entries: libc::c_uint = 1;
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, params.as_mut_ptr()) };
    if fd < 0 {
        return UringProbe::SetupFailed(errno());
    }
    let fd = fd as libc::c_int;
    // struct io_uring_probe: a 16-byte header, then 8-byte entries {op u8, resv u8, flags u16,
    // resv2 u32}. The kernel insists on a zeroed buffer.
    let mut probe = vec![0u8; 16 + PROBE_OPS_COUNT * 8];
    // SAFETY: the buffer holds the header and PROBE_OPS_COUNT entries, as nr_args says.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd,
            IORING_REGISTER_PROBE,
            probe.as_mut_ptr(),
            PROBE_OPS_COUNT as libc::c_uint,
        )
    };
    let result = if rc < 0 {
        UringProbe::ProbeFailed(errno())
    } else {
        let ops_len = probe[1] as usize;
        let mut supported = vec![false; PROBE_OPS_COUNT];
        for entry in probe[16..].chunks_exact(8).take(ops_len.min(PROBE_OPS_COUNT)) {
            let flags = u16::from_ne_bytes([entry[2], entry[3]]);
            supported[entry[0] as usize] = flags & IO_URING_OP_SUPPORTED != 0;
        }
        UringProbe::Probed(supported)
    };
    // SAFETY: fd is the ring we created and nothing else holds it.
    unsafe { libc::close(fd) };
    result
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn errno_text(errno: i32) -> String {
    std::io::Error::from_raw_os_error(errno).to_string()
}

/// `Seccomp:` of /proc/self/status (0 off, 1 strict, 2 filter).
pub fn seccomp_mode(status: &str) -> Option<u32> {
    status.lines().find_map(|l| l.strip_prefix("Seccomp:")).and_then(|v| v.trim().parse().ok())
}

pub fn io_uring_finding(probe: &UringProbe, disabled: Option<i64>, seccomp: Option<u32>) -> Finding {
    const CHECK: &str = "io_uring";
    match probe {
        UringProbe::SetupFailed(e) if *e == libc::ENOSYS => Finding::fail(
            CHECK,
            "io_uring_setup: ENOSYS — this kernel has no io_uring (built without CONFIG_IO_URING, or older than 5.1)",
            "run a kernel ≥ 5.8 built with CONFIG_IO_URING=y; the node cannot run without io_uring",
        ),
        UringProbe::SetupFailed(e) if *e == libc::EPERM => {
            let (why, advice) = match disabled {
                Some(2) => (
                    "kernel.io_uring_disabled=2 disables it for everyone".to_string(),
                    "`sysctl kernel.io_uring_disabled=0` (see the io_uring_disabled line)".to_string(),
                ),
                Some(1) => (
                    "kernel.io_uring_disabled=1 allows it only with CAP_SYS_ADMIN or in kernel.io_uring_group"
                        .to_string(),
                    "see the io_uring_disabled line".to_string(),
                ),
                _ => (
                    format!(
                        "a seccomp filter blocks io_uring_setup{} (container runtimes' default profiles do)",
                        if seccomp == Some(2) { ", and this process runs under one" } else { "" }
                    ),
                    "allow io_uring_setup, io_uring_enter and io_uring_register in the sandbox's seccomp profile \
                     (e.g. `docker run --security-opt seccomp=PROFILE.json`), or run the node outside it"
                        .to_string(),
                ),
            };
            Finding::fail(CHECK, format!("io_uring_setup: EPERM — io_uring exists but is refused: {why}"), advice)
        }
        UringProbe::SetupFailed(e) if *e == libc::ENOMEM => Finding::fail(
            CHECK,
            "io_uring_setup: ENOMEM — before 5.12 ring memory counts against RLIMIT_MEMLOCK",
            "raise the memlock limit (`ulimit -l unlimited`, systemd LimitMEMLOCK=infinity)",
        ),
        UringProbe::SetupFailed(e) => Finding::fail(
            CHECK,
            format!("io_uring_setup failed: {}", errno_text(*e)),
            "the node cannot create its rings; check the kernel (≥ 5.8) and any sandbox",
        ),
        UringProbe::ProbeFailed(e) => Finding::fail(
            CHECK,
            format!(
                "ring created, but IORING_REGISTER_PROBE failed ({}): the kernel is older than 5.6",
                errno_text(*e)
            ),
            "upgrade to Linux ≥ 5.8: glommio refuses to start without the probe",
        ),
        UringProbe::Probed(supported) => {
            let missing = |required: bool| -> Vec<&'static str> {
                URING_OPS
                    .iter()
                    .filter(|(_, op, req)| *req == required && !supported.get(*op as usize).copied().unwrap_or(false))
                    .map(|(name, _, _)| *name)
                    .collect()
            };
            let (missing_required, missing_optional) = (missing(true), missing(false));
            let names = |ops: &[&str]| ops.iter().map(|op| format!("IORING_OP_{op}")).collect::<Vec<_>>().join(", ");
            if !missing_required.is_empty() {
                Finding::fail(
                    CHECK,
                    format!("ring created; missing ops glommio requires: {}", names(&missing_required)),
                    "upgrade to Linux ≥ 5.8: glommio builds no executor without them",
                )
            } else if !missing_optional.is_empty() {
                Finding::warn(
                    CHECK,
                    format!("ring created; missing {}: zero-copy fetch fails", names(&missing_optional)),
                    "`--set fetch.send.method=copy` (sendfile hands cold ranges to splice), or Linux ≥ 5.8",
                )
            } else {
                Finding::ok(CHECK, format!("ring created; all {} ops the node uses are supported", URING_OPS.len()))
            }
        }
    }
}

pub fn io_uring_disabled_finding(value: Option<i64>, group: Option<i64>, this_process_may: bool) -> Finding {
    const CHECK: &str = "io_uring_disabled";
    let persist = "persist it as `kernel.io_uring_disabled = 0` in /etc/sysctl.d/99-sluice.conf";
    match value {
        None => {
            Finding::ok(CHECK, "kernel.io_uring_disabled absent (kernel before 6.6): io_uring open to every process")
        }
        Some(0) => Finding::ok(CHECK, "kernel.io_uring_disabled=0: io_uring open to every process"),
        Some(1) => {
            let group = match group {
                Some(g) if g >= 0 => format!("group {g}"),
                _ => "none set".to_string(),
            };
            let found = format!(
                "kernel.io_uring_disabled=1: only processes with CAP_SYS_ADMIN or in kernel.io_uring_group \
                 ({group}) may create rings; this process {}",
                if this_process_may { "may" } else { "may not" }
            );
            let advice = format!(
                "run the node with CAP_SYS_ADMIN, or `sysctl kernel.io_uring_group=GID` and put the node's user \
                 in that group, or allow everyone: `sysctl kernel.io_uring_disabled=0` ({persist})"
            );
            if this_process_may {
                Finding::warn(CHECK, found + " (the node's user must too)", advice)
            } else {
                Finding::fail(CHECK, found, advice)
            }
        }
        Some(2) => Finding::fail(
            CHECK,
            "kernel.io_uring_disabled=2: io_uring is disabled for everyone, root included; the node cannot start",
            format!(
                "re-enable it with `sysctl kernel.io_uring_disabled=0` (or =1 to limit it to CAP_SYS_ADMIN and \
                 kernel.io_uring_group) and {persist}"
            ),
        ),
        Some(other) => Finding::warn(
            CHECK,
            format!("kernel.io_uring_disabled={other}: a value this check does not know"),
            "`sysctl kernel.io_uring_disabled=0` opens io_uring to every process",
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Limits and capabilities

/// (soft, hard), `u64::MAX` for unlimited.
fn rlimit(resource: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return (0, 0);
    }
    let map = |v: libc::rlim_t| if v == libc::RLIM_INFINITY { u64::MAX } else { v };
    (map(lim.rlim_cur), map(lim.rlim_max))
}

/// The capabilities that change what the node can do about its limits and io_uring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Passes `kernel.io_uring_disabled=1`.
    pub sys_admin: bool,
    /// May raise hard rlimits (the node lifts RLIMIT_MEMLOCK itself).
    pub sys_resource: bool,
    /// Registered buffers are not charged to RLIMIT_MEMLOCK.
    pub ipc_lock: bool,
}

impl Caps {
    /// Effective capabilities from capget(2); none when it fails.
    pub fn of_this_process() -> Caps {
        const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut header = Header { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let mut data = [Data::default(); 2];
        // SAFETY: version 3 takes two data structs, which we pass.
        if unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut Header, data.as_mut_ptr()) } != 0 {
            return Caps::default();
        }
        let has = |cap: u32| data[(cap / 32) as usize].effective & (1 << (cap % 32)) != 0;
        Caps { sys_admin: has(21), sys_resource: has(24), ipc_lock: has(14) }
    }
}

fn process_in_group(gid: libc::gid_t) -> bool {
    // SAFETY: getegid has no preconditions; getgroups writes at most `n` entries.
    unsafe {
        if libc::getegid() == gid {
            return true;
        }
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return false;
        }
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let n = libc::getgroups(n, groups.as_mut_ptr());
        n > 0 && groups[..n as usize].contains(&gid)
    }
}

fn fmt_bytes(bytes: u64) -> String {
    match bytes {
        u64::MAX => "unlimited".to_string(),
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b % 1024 == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn fmt_count(n: u64) -> String {
    if n == u64::MAX {
        "unlimited".to_string()
    } else {
        n.to_string()
    }
}

/// The soft memlock limit the node ends with after `runtime::raise_memlock_limit`: 64 MiB
/// when the hard limit allows it or the process may raise the hard limit, else the hard limit.
pub fn memlock_after_node_raise(soft: u64, hard: u64, caps: Caps) -> u64 {
    if soft >= MEMLOCK_NODE_RAISE_BYTES {
        soft
    } else if hard >= MEMLOCK_NODE_RAISE_BYTES || caps.sys_resource {
        MEMLOCK_NODE_RAISE_BYTES
    } else {
        soft.max(hard)
    }
}

pub fn memlock_finding(soft: u64, hard: u64, caps: Caps, shards: u64) -> Finding {
    const CHECK: &str = "memlock";
    let fix = "`ulimit -l unlimited` in the shell that starts the node (above the hard limit only as root), \
               `LimitMEMLOCK=infinity` in its systemd unit, `memlock` in /etc/security/limits.conf, \
               `--ulimit memlock=-1:-1` for a container";
    let limits = format!("RLIMIT_MEMLOCK soft {}, hard {}", fmt_bytes(soft), fmt_bytes(hard));
    let at_start = memlock_after_node_raise(soft, hard, caps);
    if at_start < MEMLOCK_GLOMMIO_MIN_BYTES {
        return Finding::fail(
            CHECK,
            format!(
                "{limits}, no CAP_SYS_RESOURCE to raise it: glommio refuses to start below 512 KiB \
                 (\"The memlock resource limit is too low\")"
            ),
            fix,
        );
    }
    if soft < MEMLOCK_GLOMMIO_MIN_BYTES {
        return Finding::warn(
            CHECK,
            format!(
                "{limits}: below the 512 KiB glommio needs; the node lifts it to {} itself at start, \
                 other glommio programs would not",
                fmt_bytes(at_start)
            ),
            format!("set it where the node is started rather than rely on that: {fix}"),
        );
    }
    let registered = shards * RINGS_PER_SHARD * IO_MEMORY_BYTES as u64;
    let mut found = format!("{limits} (glommio needs ≥ 512 KiB soft)");
    if caps.ipc_lock {
        found.push_str("; CAP_IPC_LOCK: registered buffers are not charged");
    } else if at_start < registered + MEMLOCK_GLOMMIO_MIN_BYTES {
        found.push_str(&format!(
            "; registered buffers ({} for {shards} shards) do not all fit: glommio runs without some (not fatal)",
            fmt_bytes(registered)
        ));
    }
    Finding::ok(CHECK, found)
}

/// Descriptors the node holds right after start with this data directory: 3 per segment
/// found, 3 per internal partition still to be created, and a per-shard allowance.
pub fn nofile_need(data_dir: &Path, shards: u64, config: &BrokerConfig) -> (u64, String) {
    let mut segments = 0u64;
    let mut partitions = 0u64;
    let (mut offsets_found, mut txn_found) = (false, false);
    for entry in std::fs::read_dir(data_dir).into_iter().flatten().filter_map(|e| e.ok()) {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        offsets_found |= name.starts_with("__consumer_offsets-");
        txn_found |= name.starts_with("__transaction_state-");
        partitions += 1;
        let logs = std::fs::read_dir(entry.path())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
            .count() as u64;
        segments += logs.max(1);
    }
    let mut internal_to_create = 0u64;
    if !offsets_found {
        internal_to_create += config.offsets_topic_num_partitions.max(0) as u64;
    }
    if !txn_found {
        internal_to_create += config.transaction_state_num_partitions.max(0) as u64;
    }
    let need = FDS_PER_SEGMENT * (segments + internal_to_create) + FDS_PER_SHARD * shards;
    let detail = format!(
        "{partitions} partitions / {segments} segments in the data dir, {internal_to_create} internal partitions \
         to create, {shards} shards"
    );
    (need, detail)
}

pub fn nofile_finding(soft: u64, hard: u64, need: u64, need_detail: &str) -> Finding {
    const CHECK: &str = "nofile";
    let target = NOFILE_RECOMMENDED.max(need.saturating_mul(2));
    let limits = format!("RLIMIT_NOFILE soft {}, hard {}", fmt_count(soft), fmt_count(hard));
    let how = if hard >= target {
        format!("`ulimit -n {}` before starting the node (the hard limit allows it)", fmt_count(hard.min(1 << 20)))
    } else {
        "raise the hard limit too: `ulimit -n 1048576` as root".to_string()
    };
    let fix = format!(
        "{how}; `LimitNOFILE=1048576` in a systemd unit, `nofile` in /etc/security/limits.conf, \
         `--ulimit nofile=1048576:1048576` for a container"
    );
    let usage = "each connection holds 1 descriptor, each segment 3, each zero-copy send 2 more";
    if soft < need {
        Finding::fail(CHECK, format!("{limits}: the node needs about {need} just to start ({need_detail})"), fix)
    } else if soft < NOFILE_RECOMMENDED {
        Finding::warn(
            CHECK,
            format!("{limits}: below {NOFILE_RECOMMENDED}; {usage}, and past the limit accepts and segment rolls fail"),
            fix,
        )
    } else {
        Finding::ok(CHECK, format!("{limits} (start needs about {need})"))
    }
}

// ---------------------------------------------------------------------------------------
// Cores

/// A sysfs cpulist (`0-3,8`), empty for an empty or malformed list.
pub fn parse_cpulist(text: &str) -> Vec<usize> {
    parse_cores(text.trim()).unwrap_or_default()
}

/// `[0, 1, 2, 5]` → `0-2,5`.
pub fn fmt_cpulist(cores: &[usize]) -> String {
    let mut sorted = cores.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start { start.to_string() } else { format!("{start}-{}", sorted[i]) });
        i += 1;
    }
    parts.join(",")
}

/// Cores this process may run on (sched_getaffinity), `None` if it cannot be read.
fn allowed_cores() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some((0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect())
    }
}

pub fn cores_finding(chosen: &[usize], online: Option<&[usize]>, allowed: Option<&[usize]>) -> Finding {
    const CHECK: &str = "cores";
    let not_in = |set: &[usize]| chosen.iter().copied().filter(|c| !set.contains(c)).collect::<Vec<_>>();
    if let Some(online) = online.filter(|o| !o.is_empty()) {
        let offline = not_in(online);
        if !offline.is_empty() {
            return Finding::fail(
                CHECK,
                format!(
                    "shard cores {}: {} not online (online: {})",
                    fmt_cpulist(chosen),
                    fmt_cpulist(&offline),
                    fmt_cpulist(online)
                ),
                format!("choose --cores among {}", fmt_cpulist(online)),
            );
        }
    }
    if let Some(allowed) = allowed.filter(|a| !a.is_empty()) {
        let barred = not_in(allowed);
        if !barred.is_empty() {
            return Finding::fail(
                CHECK,
                format!(
                    "shard cores {}: this process may not run on {} (its affinity/cpuset allows {}), so pinning a \
                     shard there fails",
                    fmt_cpulist(chosen),
                    fmt_cpulist(&barred),
                    fmt_cpulist(allowed)
                ),
                format!(
                    "pass --cores within {} (the default counts cores from 0), or widen the cpuset/taskset",
                    fmt_cpulist(allowed)
                ),
            );
        }
    }
    let online_text =
        online.map_or_else(|| "online cores unknown".to_string(), |o| format!("online: {}", fmt_cpulist(o)));
    let shards = if chosen.len() == 1 { "1 shard".to_string() } else { format!("{} shards", chosen.len()) };
    Finding::ok(CHECK, format!("{shards} on cores {} ({online_text})", fmt_cpulist(chosen)))
}

// ---------------------------------------------------------------------------------------
// Data directory

/// What statfs and access(2) said about the data directory or its nearest existing ancestor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataDirInfo {
    pub data_dir: PathBuf,
    /// The directory statfs looked at: the data dir, or its nearest existing ancestor.
    pub checked: PathBuf,
    pub exists: bool,
    /// `f_type`, or the errno when statfs failed.
    pub fs_type: Result<u32, i32>,
    pub free_bytes: u64,
    /// The node can create files in it (or create it, when it does not exist yet).
    pub writable: bool,
}

fn inspect_data_dir(data_dir: &Path) -> DataDirInfo {
    let mut checked = data_dir.to_path_buf();
    while !checked.exists() {
        match checked.parent() {
            Some(p) if !p.as_os_str().is_empty() => checked = p.to_path_buf(),
            _ => {
                checked = PathBuf::from(".");
                break;
            }
        }
    }
    let cpath = CString::new(checked.as_os_str().as_bytes()).unwrap_or_default();
    // SAFETY: statfs fills the struct we pass; cpath is NUL-terminated.
    let (fs_type, free_bytes) = unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        if libc::statfs(cpath.as_ptr(), &mut buf) == 0 {
            (Ok(buf.f_type as u32), buf.f_bavail.saturating_mul(buf.f_bsize as u64))
        } else {
            (Err(errno()), 0)
        }
    };
    // SAFETY: access only reads the path.
    let writable = unsafe { libc::access(cpath.as_ptr(), libc::W_OK | libc::X_OK) } == 0;
    DataDirInfo {
        data_dir: data_dir.to_path_buf(),
        exists: checked == data_dir,
        checked,
        fs_type,
        free_bytes,
        writable,
    }
}

/// Filesystem magics (`statfs(2)`, include/uapi/linux/magic.h).
pub fn fs_name(magic: u32) -> Option<&'static str> {
    Some(match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x8584_58F6 => "ramfs",
        0x794C_7630 => "overlayfs",
        0x6969 => "nfs",
        0xFF53_4D42 | 0xFE53_4D42 => "cifs/smb",
        0x6573_5546 => "fuse",
        0x2FC1_2FC1 => "zfs",
        0xF2F5_2010 => "f2fs",
        0xCA45_1A4E => "bcachefs",
        _ => return None,
    })
}

/// Whether the filesystem takes buffered io_uring writes inline (`FMODE_BUF_WASYNC`).
fn buffered_async_writes(fs: &str, kernel: Option<(u32, u32)>) -> &'static str {
    match (fs, kernel) {
        ("xfs", Some(v)) if v >= (6, 0) => "has async buffered writes for io_uring (XFS, kernel ≥ 6.0)",
        ("xfs", _) => "no async buffered writes for io_uring (XFS has them from 6.0)",
        ("btrfs", Some(v)) if v >= (6, 1) => "has async buffered writes for io_uring (btrfs, kernel ≥ 6.1)",
        ("btrfs", _) => "no async buffered writes for io_uring (btrfs has them from 6.1)",
        ("ext4", _) => "no async buffered writes for io_uring (ext4: not even on 6.18, measured)",
        _ => "async buffered writes for io_uring not known for this filesystem",
    }
}

pub fn filesystem_finding(info: &DataDirInfo, kernel: Option<(u32, u32)>) -> Finding {
    const CHECK: &str = "filesystem";
    let place = if info.exists {
        info.data_dir.display().to_string()
    } else {
        format!("{} (absent; the node creates it; checked {})", info.data_dir.display(), info.checked.display())
    };
    let magic = match info.fs_type {
        Ok(magic) => magic,
        Err(e) => {
            return Finding::fail(
                CHECK,
                format!("{place}: statfs failed: {}", errno_text(e)),
                "pass a --data-dir the node can reach",
            )
        }
    };
    if !info.writable {
        return Finding::fail(
            CHECK,
            format!("{place}: not writable by this user"),
            "chown/chmod the directory for the node's user, or pass another --data-dir",
        );
    }
    let fs = fs_name(magic).map_or_else(|| format!("filesystem 0x{magic:x}"), str::to_string);
    let found = format!(
        "{place}: {fs}, {} free; {}, which the default log.write.method=pwritev does not need",
        fmt_bytes_approx(info.free_bytes),
        buffered_async_writes(&fs, kernel)
    );
    match fs.as_str() {
        "tmpfs" | "ramfs" => Finding::warn(
            CHECK,
            format!("{found}; data lives in memory and does not survive a reboot"),
            "put --data-dir on a disk filesystem (ext4, XFS) unless this is a test or benchmark",
        ),
        "overlayfs" => Finding::warn(
            CHECK,
            format!("{found}; a container's writable layer: slower, and gone with the container"),
            "mount a volume (a host directory on ext4/XFS) at --data-dir",
        ),
        "nfs" | "cifs/smb" | "fuse" => Finding::warn(
            CHECK,
            format!("{found}; a network/FUSE filesystem: fdatasync and page-cache behaviour differ from a local disk"),
            "put --data-dir on a local disk filesystem (ext4, XFS)",
        ),
        _ => Finding::ok(CHECK, found),
    }
}

fn fmt_bytes_approx(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

// ---------------------------------------------------------------------------------------
// Transparent huge pages

/// The selected word of a sysfs choice list: `always [madvise] never` → `madvise`.
pub fn bracketed(choices: &str) -> Option<&str> {
    let start = choices.find('[')?;
    let end = start + choices[start..].find(']')?;
    Some(&choices[start + 1..end])
}

pub fn thp_finding(enabled: Option<&str>, defrag: Option<&str>) -> Finding {
    const CHECK: &str = "thp";
    let Some(enabled) = enabled.map(|e| bracketed(e).unwrap_or(e)) else {
        return Finding::ok(CHECK, "transparent huge pages not available (no /sys/kernel/mm/transparent_hugepage)");
    };
    let defrag = defrag.map(|d| bracketed(d).unwrap_or(d)).unwrap_or("unknown");
    let found = format!("transparent huge pages: enabled [{enabled}], defrag [{defrag}]");
    if enabled == "always" && defrag == "always" {
        Finding::warn(
            CHECK,
            format!("{found}: page faults may stall in direct compaction (latency spikes)"),
            "`echo madvise > /sys/kernel/mm/transparent_hugepage/enabled` (and `echo defer+madvise > \
             /sys/kernel/mm/transparent_hugepage/defrag`); persist with the boot parameter \
             transparent_hugepage=madvise",
        )
    } else {
        Finding::ok(CHECK, found)
    }
}

// ---------------------------------------------------------------------------------------
// CPU frequency governor

fn governors(host: &HostFiles, cores: &[usize]) -> Vec<(usize, Option<String>)> {
    cores.iter().map(|&c| (c, host.read(&format!("sys/devices/system/cpu/cpu{c}/cpufreq/scaling_governor")))).collect()
}

pub fn cpufreq_finding(governors: &[(usize, Option<String>)]) -> Finding {
    const CHECK: &str = "cpufreq";
    let mut by_governor: Vec<(String, Vec<usize>)> = Vec::new();
    for (core, governor) in governors {
        let name = governor.clone().unwrap_or_else(|| "no cpufreq".to_string());
        match by_governor.iter_mut().find(|(g, _)| *g == name) {
            Some((_, cores)) => cores.push(*core),
            None => by_governor.push((name, vec![*core])),
        }
    }
    let all: Vec<usize> = governors.iter().map(|(c, _)| *c).collect();
    if governors.iter().all(|(_, g)| g.is_none()) {
        return Finding::ok(
            CHECK,
            format!(
                "no cpufreq on shard cores {}: this OS does not set the CPU frequency (usual in VMs, where the \
                 hypervisor does); nothing to set here",
                fmt_cpulist(&all)
            ),
        );
    }
    let found =
        by_governor.iter().map(|(g, cores)| format!("{g} on {}", fmt_cpulist(cores))).collect::<Vec<_>>().join(", ");
    let slow: Vec<usize> =
        governors.iter().filter(|(_, g)| g.as_deref().is_some_and(|g| g != "performance")).map(|(c, _)| *c).collect();
    if slow.is_empty() {
        Finding::ok(CHECK, format!("governor {found}"))
    } else {
        Finding::warn(
            CHECK,
            format!("governor {found}: a core that clocks down when idle is slow to answer the next request"),
            format!(
                "`cpupower -c {} frequency-set -g performance` (or write performance to \
                 /sys/devices/system/cpu/cpuN/cpufreq/scaling_governor)",
                fmt_cpulist(&slow)
            ),
        )
    }
}

// ---------------------------------------------------------------------------------------
// NIC interrupts

/// One network interface backed by a device and its interrupts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicIrqs {
    pub interface: String,
    /// IRQ number and its `smp_affinity_list` (`None`: unreadable).
    pub irqs: Vec<(u32, Option<Vec<usize>>)>,
}

/// `/proc/interrupts` rows: IRQ number and the words after it (chip, hwirq, action names).
pub fn parse_interrupts(text: &str) -> Vec<(u32, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let irq = words.next()?.strip_suffix(':')?.parse().ok()?;
            let names = words
                .skip_while(|w| w.bytes().all(|b| b.is_ascii_digit()))
                .map(|w| w.trim_end_matches(',').to_string())
                .collect();
            Some((irq, names))
        })
        .collect()
}

/// Whether an IRQ's action name belongs to the interface: `eth0`, `eth0-TxRx-3`, `eth0@pci…`,
/// or, for a virtio NIC (device `virtio2`), `virtio2-input.0` but not `virtio2-config`.
pub fn irq_name_matches(name: &str, interface: &str, device: Option<&str>) -> bool {
    if let Some(device) = device.filter(|d| d.starts_with("virtio")) {
        if let Some(queue) = name.strip_prefix(device).and_then(|rest| rest.strip_prefix('-')) {
            return queue != "config";
        }
    }
    name == interface || name.strip_prefix(interface).is_some_and(|rest| rest.starts_with('-') || rest.starts_with('@'))
}

fn nic_irqs(host: &HostFiles) -> Vec<NicIrqs> {
    let interrupts = host.read("proc/interrupts").map(|t| parse_interrupts(&t)).unwrap_or_default();
    let mut nics = Vec::new();
    for interface in host.list("sys/class/net") {
        let device = format!("sys/class/net/{interface}/device");
        // No device: loopback, bridges, veth, ifb, tun — no hardware interrupts.
        if interface == "lo" || !host.exists(&device) {
            continue;
        }
        let mut irqs: Vec<u32> =
            host.list(&format!("{device}/msi_irqs")).iter().filter_map(|n| n.parse().ok()).collect();
        if irqs.is_empty() {
            let device_name = host.link_name(&device);
            irqs = interrupts
                .iter()
                .filter(|(_, names)| names.iter().any(|n| irq_name_matches(n, &interface, device_name.as_deref())))
                .map(|(irq, _)| *irq)
                .collect();
        }
        if irqs.is_empty() {
            // A legacy INTx line.
            irqs.extend(host.read_number(&format!("{device}/irq")).filter(|&n| n > 0).map(|n| n as u32));
        }
        irqs.sort_unstable();
        irqs.dedup();
        let irqs = irqs
            .into_iter()
            .map(|irq| (irq, host.read(&format!("proc/irq/{irq}/smp_affinity_list")).map(|s| parse_cpulist(&s))))
            .collect();
        nics.push(NicIrqs { interface, irqs });
    }
    nics
}

pub fn nic_irq_finding(nics: &[NicIrqs], shards: &[usize], online: Option<&[usize]>) -> Finding {
    const CHECK: &str = "nic-irqs";
    let with_irqs: Vec<&NicIrqs> = nics.iter().filter(|n| !n.irqs.is_empty()).collect();
    if with_irqs.is_empty() {
        let checked = if nics.is_empty() {
            "no network interface backed by a device".to_string()
        } else {
            format!("checked {}", nics.iter().map(|n| n.interface.as_str()).collect::<Vec<_>>().join(", "))
        };
        return Finding::ok(CHECK, format!("no NIC IRQs found ({checked}); nothing to place"));
    }
    let overlaps =
        |affinity: &Option<Vec<usize>>| affinity.as_ref().is_some_and(|a| a.iter().any(|c| shards.contains(c)));
    let mut described = Vec::new();
    let mut overlapping = Vec::new();
    for nic in &with_irqs {
        let mut irqs: Vec<String> = nic
            .irqs
            .iter()
            .take(IRQS_SHOWN_MAX)
            .map(|(irq, a)| format!("{irq}→{}", a.as_deref().map_or_else(|| "?".to_string(), fmt_cpulist)))
            .collect();
        if nic.irqs.len() > IRQS_SHOWN_MAX {
            irqs.push(format!("… {} in all", nic.irqs.len()));
        }
        described.push(format!("{} IRQ {}", nic.interface, irqs.join(" ")));
        overlapping.extend(nic.irqs.iter().filter(|(_, a)| overlaps(a)).map(|(irq, _)| *irq));
    }
    let found = format!("{} (IRQ→cpus)", described.join("; "));
    if overlapping.is_empty() {
        return Finding::ok(CHECK, format!("{found}; none on shard cores {}", fmt_cpulist(shards)));
    }
    let found = format!(
        "{found}; {} of them may fire on shard cores {}, taking time from the shards",
        overlapping.len(),
        fmt_cpulist(shards)
    );
    let online = online.map_or_else(
        || (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect::<Vec<_>>(),
        <[usize]>::to_vec,
    );
    let free: Vec<usize> = online.iter().copied().filter(|c| !shards.contains(c)).collect();
    let irq_list = overlapping.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let advice = if free.is_empty() {
        format!(
            "every online core ({}) runs a shard, so the NIC's interrupts must land on one: unavoidable with all cores \
             as shards (e.g. a small VM with virtio); to separate them, leave a core out of --cores and move the IRQs \
             there (`echo CORE > /proc/irq/N/smp_affinity_list`)",
            fmt_cpulist(&online)
        )
    } else {
        format!(
            "move them off the shard cores: `for n in {irq_list}; do echo {} > /proc/irq/$n/smp_affinity_list; done`, \
             and keep irqbalance off the shard cores (IRQBALANCE_BANNED_CPULIST={} or stop irqbalance)",
            fmt_cpulist(&free),
            fmt_cpulist(shards)
        )
    };
    Finding::warn(CHECK, found, advice)
}

// ---------------------------------------------------------------------------------------
// NUMA

fn numa_nodes(host: &HostFiles) -> Vec<(u32, Vec<usize>)> {
    host.list("sys/devices/system/node")
        .iter()
        .filter_map(|name| {
            let node: u32 = name.strip_prefix("node")?.parse().ok()?;
            let cpus = host.read(&format!("sys/devices/system/node/{name}/cpulist")).map(|s| parse_cpulist(&s))?;
            Some((node, cpus))
        })
        .collect()
}

pub fn numa_finding(nodes: &[(u32, Vec<usize>)], shards: &[usize]) -> Finding {
    const CHECK: &str = "numa";
    if nodes.is_empty() {
        return Finding::ok(CHECK, "no NUMA nodes in /sys/devices/system/node: one memory node");
    }
    let used: Vec<&(u32, Vec<usize>)> =
        nodes.iter().filter(|(_, cpus)| cpus.iter().any(|c| shards.contains(c))).collect();
    let describe = |list: &[&(u32, Vec<usize>)]| {
        list.iter().map(|(n, cpus)| format!("node{n} ({})", fmt_cpulist(cpus))).collect::<Vec<_>>().join(", ")
    };
    if used.len() <= 1 {
        let on = used.first().map_or_else(|| "no known node".to_string(), |(n, _)| format!("node{n}"));
        return Finding::ok(
            CHECK,
            format!("shard cores {} on {on} ({} node(s) in all)", fmt_cpulist(shards), nodes.len()),
        );
    }
    let first = used[0];
    Finding::warn(
        CHECK,
        format!(
            "shard cores {} span NUMA nodes {}: shards exchange messages and share page cache across the interconnect",
            fmt_cpulist(shards),
            describe(&used)
        ),
        format!(
            "pick shard cores from one node (e.g. --cores {}), or run one node process per NUMA node \
             (`numactl --cpunodebind=N --membind=N`)",
            fmt_cpulist(&first.1)
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Writeback (informational)

fn writeback_finding(host: &HostFiles) -> Finding {
    const CHECK: &str = "writeback";
    let read = |name: &str| host.read_number(&format!("proc/sys/vm/{name}"));
    let (ratio, bg_ratio) = (read("dirty_ratio"), read("dirty_background_ratio"));
    let (bytes, bg_bytes) = (read("dirty_bytes"), read("dirty_background_bytes"));
    let describe = |bytes: Option<i64>, ratio: Option<i64>, name: &str| match (bytes, ratio) {
        (Some(b), _) if b > 0 => format!("vm.{name}_bytes={}", fmt_bytes(b as u64)),
        (_, Some(r)) => format!("vm.{name}_ratio={r}%"),
        _ => format!("vm.{name}_* unreadable"),
    };
    Finding::ok(
        CHECK,
        format!(
            "{}, {} (defaults 10% / 20%; how they throttle a producer: kernel-notes/write-path.md §2)",
            describe(bg_bytes, bg_ratio, "dirty_background"),
            describe(bytes, ratio, "dirty")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse_from_uname_releases() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.10.0-rc1"), Some((5, 10)));
        assert_eq!(parse_kernel_version("5.8"), Some((5, 8)));
        assert_eq!(parse_kernel_version("6.1-custom"), Some((6, 1)));
        assert_eq!(parse_kernel_version("garbage"), None);
        assert_eq!(parse_kernel_version(""), None);
    }

    #[test]
    fn kernel_floor_is_5_8_and_5_6_is_fatal() {
        assert_eq!(kernel_finding("6.18.44").status, Status::Ok);
        assert_eq!(kernel_finding("5.8.0").status, Status::Ok);
        assert!(kernel_finding("5.10.0").found.contains("RLIMIT_MEMLOCK"));
        assert_eq!(kernel_finding("5.7.1").status, Status::Warn);
        assert_eq!(kernel_finding("5.4.0").status, Status::Fail);
    }

    #[test]
    fn cpulists_parse_and_format_round_trip() {
        assert_eq!(parse_cpulist("0-3,8\n"), vec![0, 1, 2, 3, 8]);
        assert_eq!(parse_cpulist(""), Vec::<usize>::new());
        assert_eq!(fmt_cpulist(&[5, 0, 1, 2, 7, 8]), "0-2,5,7-8");
        assert_eq!(fmt_cpulist(&[3]), "3");
        assert_eq!(fmt_cpulist(&[]), "");
    }

    #[test]
    fn sysfs_choices_give_the_bracketed_word() {
        assert_eq!(bracketed("always [madvise] never"), Some("madvise"));
        assert_eq!(bracketed("[always] defer defer+madvise madvise never"), Some("always"));
        assert_eq!(bracketed("always madvise"), None);
    }

    #[test]
    fn thp_always_with_defrag_always_advises_madvise() {
        let f = thp_finding(Some("[always] madvise never"), Some("[always] defer defer+madvise madvise never"));
        assert_eq!(f.status, Status::Warn);
        assert!(f.advice.unwrap().contains("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"));
        assert_eq!(
            thp_finding(Some("[always] madvise never"), Some("always defer [madvise] never")).status,
            Status::Ok
        );
        assert_eq!(thp_finding(None, None).status, Status::Ok);
    }

    #[test]
    fn proc_interrupts_rows_parse_and_match_virtio_queues() {
        let text = "           CPU0       CPU1\n\
                    \x20 37:          0          0 PCI-MSIX-0000:00:03.0   0-edge      virtio2-config\n\
                    \x20 38:          0        908 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n\
                    \x20 39:        547          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0\n\
                    \x20 41:       3208          0 PCI-MSIX-0000:00:04.0   1-edge      virtio20-rx\n\
                    \x20 50:          1          2 IR-PCI-MSI 1-edge eth1-TxRx-0, eth1-TxRx-1\n\
                    NMI:          0          0   Non-maskable interrupts\n";
        let rows = parse_interrupts(text);
        assert_eq!(rows.iter().map(|(irq, _)| *irq).collect::<Vec<_>>(), vec![37, 38, 39, 41, 50]);
        let matching = |iface: &str, dev: Option<&str>| -> Vec<u32> {
            rows.iter()
                .filter(|(_, names)| names.iter().any(|n| irq_name_matches(n, iface, dev)))
                .map(|(i, _)| *i)
                .collect()
        };
        assert_eq!(matching("eth0", Some("virtio2")), vec![38, 39]);
        assert_eq!(matching("eth1", Some("0000:3b:00.0")), vec![50]);
        assert!(!irq_name_matches("eth10-TxRx-0", "eth1", None));
    }

    #[test]
    fn nic_irqs_on_shard_cores_are_named_with_where_to_move_them() {
        let nics = vec![NicIrqs { interface: "eth0".into(), irqs: vec![(40, Some(vec![0])), (41, Some(vec![3]))] }];
        let f = nic_irq_finding(&nics, &[0, 1], Some(&[0, 1, 2, 3]));
        assert_eq!(f.status, Status::Warn);
        assert!(f.found.contains("1 of them"), "{}", f.found);
        assert!(f.advice.as_ref().unwrap().contains("for n in 40; do echo 2-3 > /proc/irq/$n/smp_affinity_list"));
        let all = nic_irq_finding(&nics, &[0, 1, 2, 3], Some(&[0, 1, 2, 3]));
        assert!(all.advice.unwrap().contains("unavoidable"));
        assert_eq!(nic_irq_finding(&nics, &[1, 2], Some(&[0, 1, 2, 3])).status, Status::Ok);
        assert!(nic_irq_finding(&[], &[0], None).found.contains("no NIC IRQs found"));
    }

    #[test]
    fn memlock_fails_only_when_the_node_cannot_lift_it() {
        let none = Caps::default();
        let root = Caps { sys_admin: true, sys_resource: true, ipc_lock: true };
        let low = 64 << 10;
        let f = memlock_finding(low, low, none, 2);
        assert_eq!(f.status, Status::Fail);
        assert!(f.advice.as_ref().unwrap().contains("ulimit -l") && f.advice.unwrap().contains("LimitMEMLOCK"));
        assert_eq!(memlock_finding(low, 8 << 20, none, 2).status, Status::Warn);
        assert_eq!(memlock_finding(low, low, root, 2).status, Status::Warn);
        assert_eq!(memlock_after_node_raise(low, 8 << 20, none), 8 << 20);
        assert_eq!(memlock_after_node_raise(low, low, root), 64 << 20);
        let ok = memlock_finding(8 << 20, 8 << 20, none, 2);
        assert_eq!(ok.status, Status::Ok);
        assert!(memlock_finding(1 << 20, 1 << 20, none, 8).found.contains("not fatal"));
    }

    #[test]
    fn nofile_below_need_fails_below_recommended_warns() {
        assert_eq!(nofile_finding(256, 1 << 20, 400, "x").status, Status::Fail);
        let w = nofile_finding(1024, 1 << 20, 400, "x");
        assert_eq!(w.status, Status::Warn);
        assert!(w.advice.as_ref().unwrap().contains("ulimit -n 1048576") && w.advice.unwrap().contains("LimitNOFILE="));
        assert!(nofile_finding(1024, 4096, 400, "x").advice.unwrap().contains("hard limit"));
        assert_eq!(nofile_finding(1 << 20, 1 << 20, 400, "x").status, Status::Ok);
    }

    #[test]
    fn io_uring_disabled_values_explained() {
        assert_eq!(io_uring_disabled_finding(None, None, false).status, Status::Ok);
        assert_eq!(io_uring_disabled_finding(Some(0), Some(-1), false).status, Status::Ok);
        assert_eq!(io_uring_disabled_finding(Some(1), Some(-1), true).status, Status::Warn);
        let one = io_uring_disabled_finding(Some(1), Some(-1), false);
        assert_eq!(one.status, Status::Fail);
        assert!(one.advice.unwrap().contains("kernel.io_uring_group=GID"));
        let two = io_uring_disabled_finding(Some(2), None, true);
        assert_eq!(two.status, Status::Fail);
        assert!(two.found.contains("disabled for everyone"));
        assert!(two.advice.unwrap().contains("sysctl kernel.io_uring_disabled=0"));
    }

    #[test]
    fn io_uring_errors_name_their_cause() {
        let eperm = io_uring_finding(&UringProbe::SetupFailed(libc::EPERM), Some(0), Some(2));
        assert_eq!(eperm.status, Status::Fail);
        assert!(eperm.found.contains("seccomp"));
        assert!(io_uring_finding(&UringProbe::SetupFailed(libc::EPERM), Some(2), None).found.contains("=2"));
        assert!(io_uring_finding(&UringProbe::SetupFailed(libc::ENOSYS), None, None).found.contains("no io_uring"));
        let mut ops = vec![true; PROBE_OPS_COUNT];
        assert_eq!(io_uring_finding(&UringProbe::Probed(ops.clone()), None, None).status, Status::Ok);
        ops[30] = false;
        let no_splice = io_uring_finding(&UringProbe::Probed(ops.clone()), None, None);
        assert_eq!(no_splice.status, Status::Warn);
        assert!(no_splice.advice.unwrap().contains("fetch.send.method=copy"));
        ops[21] = false;
        let no_statx = io_uring_finding(&UringProbe::Probed(ops), None, None);
        assert_eq!(no_statx.status, Status::Fail);
        assert!(no_statx.found.contains("IORING_OP_STATX"));
    }

    #[test]
    fn this_kernel_creates_a_ring_and_answers_the_probe() {
        // The development box and CI run ≥ 6.x with io_uring open; the node needs the same.
        match probe_io_uring() {
            UringProbe::Probed(ops) => assert!(ops[22] && ops[23], "READ and WRITE supported"),
            other => panic!("io_uring probe: {other:?}"),
        }
    }

    #[test]
    fn numa_spanning_two_nodes_warns() {
        let nodes = vec![(0, vec![0, 1]), (1, vec![2, 3])];
        assert_eq!(numa_finding(&nodes, &[0, 1]).status, Status::Ok);
        let f = numa_finding(&nodes, &[1, 2]);
        assert_eq!(f.status, Status::Warn);
        assert!(f.advice.unwrap().contains("--cores 0-1"));
        assert_eq!(numa_finding(&[], &[0]).status, Status::Ok);
    }

    #[test]
    fn cpufreq_absent_is_said_plainly_and_powersave_warns() {
        let absent = cpufreq_finding(&[(0, None), (1, None)]);
        assert_eq!(absent.status, Status::Ok);
        assert!(absent.found.contains("no cpufreq"));
        let f = cpufreq_finding(&[(0, Some("performance".into())), (1, Some("powersave".into()))]);
        assert_eq!(f.status, Status::Warn);
        assert!(f.advice.unwrap().contains("cpupower -c 1 frequency-set -g performance"));
    }

    #[test]
    fn cores_outside_online_or_affinity_fail() {
        assert_eq!(cores_finding(&[0, 1], Some(&[0, 1]), Some(&[0, 1])).status, Status::Ok);
        assert_eq!(cores_finding(&[0, 4], Some(&[0, 1]), None).status, Status::Fail);
        assert_eq!(cores_finding(&[0, 1], Some(&[0, 1, 2, 3]), Some(&[2, 3])).status, Status::Fail);
    }

    #[test]
    fn filesystems_by_magic_and_tmpfs_warns() {
        let info = |magic| DataDirInfo {
            data_dir: "/d".into(),
            checked: "/d".into(),
            exists: true,
            fs_type: Ok(magic),
            free_bytes: 10 << 30,
            writable: true,
        };
        let ext4 = filesystem_finding(&info(0xEF53), Some((6, 18)));
        assert_eq!(ext4.status, Status::Ok);
        assert!(ext4.found.contains("ext4") && ext4.found.contains("pwritev"));
        assert!(filesystem_finding(&info(0x5846_5342), Some((6, 1))).found.contains("has async buffered writes"));
        assert!(filesystem_finding(&info(0x5846_5342), Some((5, 15))).found.contains("from 6.0"));
        let tmpfs = filesystem_finding(&info(0x0102_1994), Some((6, 18)));
        assert_eq!(tmpfs.status, Status::Warn);
        assert!(tmpfs.found.contains("does not survive a reboot"));
        let ro = DataDirInfo { writable: false, ..info(0xEF53) };
        assert_eq!(filesystem_finding(&ro, None).status, Status::Fail);
    }

    #[test]
    fn seccomp_mode_reads_from_proc_status() {
        assert_eq!(seccomp_mode("Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n"), Some(2));
        assert_eq!(seccomp_mode("Name:\tx\n"), None);
    }
}
