//! `sluice doctor` end to end: the built binary on this host (real limits and syscalls), under
//! lowered rlimits, and against fake /proc and /sys trees given through `SLUICE_DOCTOR_ROOT`.
//! Each test asserts what a user would read: the status and the advice on the check's line.

use sluice::testing::TempDir;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every check, in the order `sluice doctor` prints them.
const CHECKS: [&str; 12] = [
    "kernel",
    "io_uring",
    "io_uring_disabled",
    "memlock",
    "nofile",
    "cores",
    "filesystem",
    "thp",
    "cpufreq",
    "nic-irqs",
    "numa",
    "writeback",
];

const KIB: libc::rlim_t = 1024;
/// Linux capability number of CAP_SYS_RESOURCE (raising hard rlimits).
const CAP_SYS_RESOURCE: libc::c_ulong = 24;

fn sluice_bin() -> PathBuf {
    std::env::var_os("SLUICE_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")), PathBuf::from)
}

/// What one run printed and how it exited.
struct Report {
    code: i32,
    stdout: String,
}

impl Report {
    /// The line of one check: `STATUS  CHECK  …`.
    fn line(&self, check: &str) -> &str {
        let mut lines = self.stdout.lines().filter(|l| l.split_whitespace().nth(1) == Some(check));
        let line = lines.next().unwrap_or_else(|| panic!("no {check} line in:\n{}", self.stdout));
        assert!(lines.next().is_none(), "two {check} lines in:\n{}", self.stdout);
        line
    }

    fn status(&self, check: &str) -> &str {
        self.line(check).split_whitespace().next().unwrap_or_default()
    }
}

/// Runs `sluice doctor ARGS` with /proc and /sys under `root` (the real ones when `None`),
/// after `before_exec` ran in the child.
fn doctor(
    args: &[&str],
    root: Option<&Path>,
    before_exec: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Report {
    let mut cmd = Command::new(sluice_bin());
    cmd.arg("doctor").args(args);
    match root {
        Some(root) => cmd.env("SLUICE_DOCTOR_ROOT", root),
        None => cmd.env_remove("SLUICE_DOCTOR_ROOT"),
    };
    // SAFETY: the hook only calls async-signal-safe syscalls (prctl, setrlimit).
    unsafe { cmd.pre_exec(before_exec) };
    let out = cmd.output().expect("run sluice doctor");
    let report =
        Report { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned() };
    eprintln!("{}{}", report.stdout, String::from_utf8_lossy(&out.stderr));
    report
}

fn nothing() -> std::io::Result<()> {
    Ok(())
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: libc::rlim_t, hard: libc::rlim_t) -> std::io::Result<()> {
    let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn get_limit(resource: libc::__rlimit_resource_t) -> (libc::rlim_t, libc::rlim_t) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(resource, &mut lim) }, 0);
    (lim.rlim_cur, lim.rlim_max)
}

/// A fake root: each `(path, contents)` becomes a file under it.
fn fake_root(files: &[(&str, &str)]) -> TempDir {
    let root = TempDir::new("doctor-root");
    for (path, contents) in files {
        let path = root.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    root
}

#[test]
fn on_this_host_every_check_prints_one_line_and_nothing_fails() {
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap()], None, nothing);
    for check in CHECKS {
        let status = report.status(check);
        assert!(["ok", "warn", "FAIL"].contains(&status), "{check}: status {status:?}");
        if status != "ok" {
            assert!(report.line(check).contains(" → "), "a {status} without advice: {}", report.line(check));
        }
    }
    assert!(!report.stdout.contains("\nFAIL"), "a check failed on the development host");
    assert_eq!(report.code, 0);
    assert!(report.line("io_uring").contains("all 25 ops the node uses are supported"));
}

#[test]
fn memlock_the_node_cannot_lift_to_512_kib_fails_with_the_fix() {
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap()], None, || {
        // As root, drop CAP_SYS_RESOURCE from the bounding set so the exec'd doctor (like a
        // node started the same way) cannot raise the hard limit; a non-root runner lacks it
        // anyway and gets EPERM here, which is fine.
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) };
        set_limit(libc::RLIMIT_MEMLOCK, 64 * KIB, 64 * KIB)
    });
    let line = report.line("memlock");
    assert_eq!(report.status("memlock"), "FAIL", "{line}");
    assert!(line.contains("soft 64 KiB, hard 64 KiB"), "{line}");
    assert!(line.contains("glommio refuses to start below 512 KiB"), "{line}");
    assert!(line.contains("ulimit -l unlimited") && line.contains("LimitMEMLOCK=infinity"), "{line}");
    assert_eq!(report.code, 1);
}

#[test]
fn a_low_memlock_soft_limit_the_node_lifts_itself_warns_with_the_fix() {
    let (_, hard) = get_limit(libc::RLIMIT_MEMLOCK);
    if hard < 512 * KIB {
        eprintln!("skipped: this runner's hard memlock limit ({hard} B) is below 512 KiB");
        return;
    }
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap()], None, move || {
        set_limit(libc::RLIMIT_MEMLOCK, 64 * KIB, hard)
    });
    let line = report.line("memlock");
    assert_eq!(report.status("memlock"), "warn", "{line}");
    assert!(line.contains("the node lifts it to"), "{line}");
    assert!(line.contains("ulimit -l") && line.contains("LimitMEMLOCK"), "{line}");
    assert_eq!(report.code, 0);
}

#[test]
fn a_low_open_file_limit_warns_with_the_fix() {
    let (_, hard) = get_limit(libc::RLIMIT_NOFILE);
    let soft = hard.min(1024);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap(), "--cores", "0"], None, move || {
        set_limit(libc::RLIMIT_NOFILE, soft, hard)
    });
    let line = report.line("nofile");
    assert_eq!(report.status("nofile"), "warn", "{line}");
    assert!(line.contains(&format!("soft {soft},")), "{line}");
    assert!(line.contains("ulimit -n") && line.contains("LimitNOFILE="), "{line}");
    assert_eq!(report.code, 0, "a warning alone does not fail the doctor");
}

#[test]
fn io_uring_disabled_2_fails_and_says_how_to_re_enable_it() {
    let root = fake_root(&[("proc/sys/kernel/io_uring_disabled", "2\n"), ("proc/sys/kernel/io_uring_group", "-1\n")]);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap()], Some(root.path()), nothing);
    let line = report.line("io_uring_disabled");
    assert_eq!(report.status("io_uring_disabled"), "FAIL", "{line}");
    assert!(line.contains("io_uring is disabled for everyone, root included"), "{line}");
    assert!(line.contains("sysctl kernel.io_uring_disabled=0"), "{line}");
    assert!(line.contains("/etc/sysctl.d/"), "{line}");
    assert_eq!(report.code, 1);
}

#[test]
fn thp_always_with_defrag_always_advises_madvise() {
    let root = fake_root(&[
        ("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n"),
        ("sys/kernel/mm/transparent_hugepage/defrag", "[always] defer defer+madvise madvise never\n"),
    ]);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap()], Some(root.path()), nothing);
    let line = report.line("thp");
    assert_eq!(report.status("thp"), "warn", "{line}");
    assert!(line.contains("enabled [always], defrag [always]"), "{line}");
    assert!(line.contains("echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"), "{line}");
}

#[test]
fn nic_irqs_on_a_shard_core_are_named_with_where_to_move_them() {
    let root = fake_root(&[
        ("sys/devices/system/cpu/online", "0-3\n"),
        ("sys/class/net/eth0/device/msi_irqs/40", "msix\n"),
        ("sys/class/net/eth0/device/msi_irqs/41", "msix\n"),
        ("sys/class/net/lo/address", "00:00:00:00:00:00\n"),
        ("proc/irq/40/smp_affinity_list", "0\n"),
        ("proc/irq/41/smp_affinity_list", "1\n"),
    ]);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap(), "--cores", "0"], Some(root.path()), nothing);
    let line = report.line("nic-irqs");
    assert_eq!(report.status("nic-irqs"), "warn", "{line}");
    assert!(line.contains("eth0 IRQ 40→0 41→1"), "{line}");
    assert!(line.contains("1 of them may fire on shard cores 0"), "{line}");
    assert!(line.contains("for n in 40; do echo 1-3 > /proc/irq/$n/smp_affinity_list; done"), "{line}");
    assert!(line.contains("irqbalance"), "{line}");
}

#[test]
fn virtio_nic_irqs_are_found_by_name_and_called_unavoidable_when_every_core_is_a_shard() {
    // As on a small VM: eth0's device is `virtio2`, whose queues appear in /proc/interrupts.
    let root = fake_root(&[
        ("sys/devices/system/cpu/online", "0-1\n"),
        ("sys/devices/virtio2/features", "1\n"),
        (
            "proc/interrupts",
            "           CPU0       CPU1\n \
             37:          0          0 PCI-MSIX-0000:00:03.0   0-edge      virtio2-config\n \
             38:          0        908 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n \
             39:        547          0 PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0\n",
        ),
        ("proc/irq/38/smp_affinity_list", "1\n"),
        ("proc/irq/39/smp_affinity_list", "0\n"),
    ]);
    std::fs::create_dir_all(root.path().join("sys/class/net/eth0")).unwrap();
    std::os::unix::fs::symlink("../../../devices/virtio2", root.path().join("sys/class/net/eth0/device")).unwrap();
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap(), "--cores", "0-1"], Some(root.path()), nothing);
    let line = report.line("nic-irqs");
    assert_eq!(report.status("nic-irqs"), "warn", "{line}");
    assert!(line.contains("eth0 IRQ 38→1 39→0"), "{line}");
    assert!(line.contains("unavoidable"), "{line}");
}

#[test]
fn no_nic_irqs_and_no_cpufreq_are_said_plainly() {
    let root = fake_root(&[("sys/class/net/lo/address", "00:00:00:00:00:00\n")]);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap(), "--cores", "0"], Some(root.path()), nothing);
    assert_eq!(report.status("nic-irqs"), "ok");
    assert!(report.line("nic-irqs").contains("no NIC IRQs found"));
    assert_eq!(report.status("cpufreq"), "ok");
    assert!(report.line("cpufreq").contains("no cpufreq on shard cores 0"));
}

#[test]
fn shard_cores_spanning_two_numa_nodes_warn() {
    let root = fake_root(&[
        ("sys/devices/system/node/node0/cpulist", "0\n"),
        ("sys/devices/system/node/node1/cpulist", "1\n"),
    ]);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap(), "--cores", "0-1"], Some(root.path()), nothing);
    let line = report.line("numa");
    assert_eq!(report.status("numa"), "warn", "{line}");
    assert!(line.contains("span NUMA nodes node0 (0), node1 (1)"), "{line}");
    assert!(line.contains("--cores 0"), "{line}");
}

#[test]
fn a_powersave_governor_warns_with_the_command() {
    let root = fake_root(&[("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", "powersave\n")]);
    let data = TempDir::new("doctor-data");
    let report = doctor(&["--data-dir", data.path().to_str().unwrap(), "--cores", "0"], Some(root.path()), nothing);
    let line = report.line("cpufreq");
    assert_eq!(report.status("cpufreq"), "warn", "{line}");
    assert!(line.contains("cpupower -c 0 frequency-set -g performance"), "{line}");
}
