//! A real systemd (the machine's own, 252 on Debian 12) booted as PID 1 in private
//! namespaces, so that the units run as deployed. Driven with `nsenter`; ended by
//! killing its PID 1, which takes every process of the namespace with it.
//!
//! It must never change the machine it runs on. At boot systemd would empty the shared
//! /tmp (tmpfiles' `D /tmp`), write /etc/machine-id, linger files, timer stamps and
//! /var/log/wtmp, add users with sysusers, apply sysctls, create /dev/log and allocate
//! virtual consoles on the shared /dev, and put its units' cgroups beside the host's.
//! So, before systemd is exec'ed (the script stops at the first mount that fails):
//! - private tmpfs on /tmp, /var/tmp, /run, /var/log/journal, /etc/systemd/system,
//!   /usr/local/bin and /usr/local/lib (the binary under test and the pinned CLI);
//! - /etc and /var are overlays whose writes land in a tmpfs, and so is /usr for a
//!   machine that installs the Debian package ([`Machine::boot_writable_usr`]);
//! - a private /dev with only null, zero, full, random, urandom, tty, its own devpts
//!   and shm, and /dev/console pointing at /dev/null;
//! - the rest of the host's tree is read-only, except /home (the throwaway users'
//!   homes are real: the provisioner writes into them);
//! - /proc/sys and /sys are read-only; the cgroup tree is a fresh cgroup2 mount in a
//!   cgroup namespace rooted at a cgroup made for this machine and removed with it;
//! - the boot units that touch the kernel or the disk are masked (list below).
//!
//! Users must exist before [`Machine::boot`]: /etc/passwd is read through the overlay.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Boot units that would touch the host (disk, kernel, consoles) or cannot work here.
const MASKED: &[&str] = &[
    // Disk: tmpfiles (empties /tmp, creates files under /var, /home, /srv), sysusers
    // (edits /etc/passwd), utmp/wtmp, the ConditionNeedsUpdate= family (ld.so.cache,
    // hwdb, catalog, /etc/.updated), machine-id commit, random seed, first boot, repart.
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-clean.timer",
    "systemd-sysusers.service",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    "systemd-update-done.service",
    "systemd-journal-catalog-update.service",
    "systemd-hwdb-update.service",
    "ldconfig.service",
    "systemd-machine-id-commit.service",
    "systemd-random-seed.service",
    "systemd-firstboot.service",
    "systemd-repart.service",
    "systemd-remount-fs.service",
    // Kernel: modules, sysctls, binfmt, udev (it would replay the host's uevents), TPM.
    "kmod-static-nodes.service",
    "modprobe@.service",
    "systemd-modules-load.service",
    "systemd-sysctl.service",
    "systemd-binfmt.service",
    "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-pcrphase.service",
    "systemd-pcrphase-sysinit.service",
    "sys-kernel-config.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    // Consoles.
    "getty.target",
    "console-getty.service",
    "systemd-ask-password-wall.path",
    "systemd-ask-password-console.path",
];

/// Runs as PID 1 of the new namespaces, then becomes systemd.
const BOOT: &str = r#"
set -eu
die() { echo "claude-auth-sync test machine: $*; systemd was NOT started" >&2; exit 1; }
mount -t tmpfs -o mode=0755 tmpfs /run || die "no private /run"
S=/run/.host-overlay
mkdir -p $S/etc/upper $S/etc/work $S/var/upper $S/var/work $S/dev
mount -t overlay overlay -o lowerdir=/etc,upperdir=$S/etc/upper,workdir=$S/etc/work /etc || die "no overlay on /etc"
mount -t overlay overlay -o lowerdir=/var,upperdir=$S/var/upper,workdir=$S/var/work /var || die "no overlay on /var"
if [ -n "$CAS_WRITABLE_USR" ]; then
  mkdir -p $S/usr/upper $S/usr/work
  mount -t overlay overlay -o lowerdir=/usr,upperdir=$S/usr/upper,workdir=$S/usr/work /usr || die "no overlay on /usr"
fi
D=$S/dev
mount -t tmpfs -o mode=0755,nosuid tmpfs $D
for n in null zero full random urandom tty; do touch $D/$n; mount --bind /dev/$n $D/$n; done
touch $D/console; mount --bind /dev/null $D/console
mkdir $D/pts $D/shm $D/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts $D/pts
ln -s pts/ptmx $D/ptmx
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $D/shm
ln -s /proc/self/fd $D/fd; ln -s /proc/self/fd/0 $D/stdin; ln -s /proc/self/fd/1 $D/stdout; ln -s /proc/self/fd/2 $D/stderr
mount --move $D /dev || die "no private /dev"
# What the test needs from under /tmp or /var/tmp (a checkout there, say) is held here,
# before the private tmpfs mounts hide it, and put back read-only afterwards.
i=0
for k in $CAS_KEEP; do
  mkdir -p $S/keep/$i && mount --bind "$k" $S/keep/$i || die "cannot keep $k"
  i=$((i+1))
done
mount --bind /home /home
mount -o remount,bind,ro / || die "cannot make the host's tree read-only"
mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
mount -t tmpfs -o mode=1777 tmpfs /tmp || die "no private /tmp"
mount -t tmpfs -o mode=1777 tmpfs /var/tmp || die "no private /var/tmp"
mkdir -p /var/log/journal
mount -t tmpfs -o mode=2755 tmpfs /var/log/journal || die "no private /var/log/journal"
mount -t tmpfs -o mode=0755 tmpfs /etc/systemd/system || die "no private /etc/systemd/system"
mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin || die "no private /usr/local/bin"
mount -t tmpfs -o mode=0755 tmpfs /usr/local/lib || die "no private /usr/local/lib"
i=0
for k in $CAS_KEEP; do
  mkdir -p "$k" && mount --bind $S/keep/$i "$k" && mount -o remount,bind,ro "$k" || die "cannot put back $k"
  i=$((i+1))
done
for b in $CAS_BINDS; do
  mkdir -p "${b#*=}" && mount --bind "${b%%=*}" "${b#*=}" && mount -o remount,bind,ro "${b#*=}" || die "cannot bind $b"
done
mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "no cgroup2 in the cgroup namespace"
mount -o remount,bind,ro /sys
echo "$CAS_HOSTNAME" > /etc/hostname
echo "127.0.1.1 $CAS_HOSTNAME" >> /etc/hosts
for u in $CAS_MASK; do ln -s /dev/null /etc/systemd/system/$u; done
exec env -i container=claude-auth-sync-test /lib/systemd/systemd --system
"#;

/// Mounts that must be private before systemd may run.
const PRIVATE: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/log/journal", "/etc/systemd/system", "/usr/local/bin"];

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts exit 0, naming `what` and the output otherwise.
    pub fn ok(self, what: &str) -> Out {
        assert_eq!(self.code, 0, "{what} exited {}:\n{}", self.code, self.all());
        self
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Out {
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub struct Machine {
    /// The host's pid of the namespace's PID 1 (systemd).
    pid: u32,
    unshare: Child,
    cgroup: PathBuf,
    pid_ns: PathBuf,
    log: tempfile::NamedTempFile,
}

fn cgroup2_root() -> PathBuf {
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if Path::new(p).join("cgroup.procs").exists() && Path::new(p).join("cgroup.subtree_control").exists() {
            return PathBuf::from(p);
        }
    }
    panic!("systemd cannot boot here: no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified")
}

fn need(bin: &str, package: &str) {
    let found = Path::new(bin).is_absolute() && Path::new(bin).exists()
        || std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(bin).exists());
    assert!(found, "systemd cannot boot here: {bin} is missing; install it with: apt-get install {package}");
}

impl Machine {
    /// Boots systemd; `binds` are (host directory, path under /usr/local/lib) pairs
    /// mounted read-only before the boot. Panics with the reason when it cannot boot.
    pub fn boot(hostname: &str, binds: &[(&Path, &str)]) -> Machine {
        Machine::start(hostname, binds, false)
    }

    /// [`Machine::boot`] with /usr an overlay whose writes land in the machine's tmpfs,
    /// so that `dpkg -i` can install a package inside it (/var and /etc are overlays
    /// already: dpkg's database and the package's /etc changes stay inside too).
    pub fn boot_writable_usr(hostname: &str, binds: &[(&Path, &str)]) -> Machine {
        Machine::start(hostname, binds, true)
    }

    fn start(hostname: &str, binds: &[(&Path, &str)], writable_usr: bool) -> Machine {
        assert!(rustix::process::geteuid().is_root(), "booting systemd in namespaces needs root (CI runs as root)");
        need("/lib/systemd/systemd", "systemd");
        need("unshare", "util-linux");
        need("nsenter", "util-linux");
        let cgroup = cgroup2_root().join(format!("claude-auth-sync-test-{}-{hostname}", std::process::id()));
        std::fs::create_dir(&cgroup)
            .unwrap_or_else(|e| panic!("systemd cannot boot here: mkdir {}: {e}", cgroup.display()));
        let binds_src: Vec<&Path> = binds.iter().map(|(src, _)| *src).collect();
        let binds: Vec<String> = binds
            .iter()
            .map(|(src, dst)| {
                let (src, dst) = (src.display().to_string(), format!("/usr/local/lib/{dst}"));
                assert!(!src.contains([' ', '=']) && !dst.contains([' ', '=']), "bind paths without spaces: {src}");
                format!("{src}={dst}")
            })
            .collect();
        // The checkout and the test binary's directory may lie under /tmp, which the
        // machine mounts privately: the boot script keeps them visible.
        let exe_dir = Path::new(env!("CARGO_BIN_EXE_claude-auth-sync")).parent().unwrap().to_path_buf();
        let keep: Vec<String> = [Path::new(env!("CARGO_MANIFEST_DIR")), exe_dir.as_path()]
            .into_iter()
            .chain(binds_src.iter().copied())
            .map(|p| p.display().to_string())
            .collect();
        assert!(keep.iter().all(|k| !k.contains(' ')), "kept paths without spaces: {keep:?}");
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo $$ > \"$CAS_CGROUP/cgroup.procs\" && exec unshare --cgroup --pid --fork --kill-child --mount --uts \
             --ipc --propagation private --mount-proc sh -c \"$CAS_BOOT\"",
        ])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CAS_CGROUP", &cgroup)
        .env("CAS_BOOT", BOOT)
        .env("CAS_BINDS", binds.join(" "))
        .env("CAS_KEEP", keep.join(" "))
        .env("CAS_HOSTNAME", hostname)
        .env("CAS_MASK", MASKED.join(" "))
        .env("CAS_WRITABLE_USR", if writable_usr { "1" } else { "" })
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap());
        // If the test process dies, unshare dies, and --kill-child takes the namespace down.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let unshare = cmd.spawn().expect("run sh");
        let mut m = Machine { pid: 0, unshare, cgroup, pid_ns: PathBuf::new(), log };
        m.pid = m.wait_for_pid1();
        m.pid_ns = std::fs::read_link(format!("/proc/{}/ns/pid", m.pid)).unwrap();
        m.check_private_mounts();
        m.wait_until_running();
        m
    }

    fn boot_log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    fn fail(&mut self, why: &str) -> ! {
        panic!("systemd cannot boot here: {why}\n--- boot log:\n{}", self.boot_log())
    }

    /// The unshare process's child, once it is systemd.
    fn wait_for_pid1(&mut self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        let unshare = self.unshare.id();
        loop {
            if let Ok(Some(status)) = self.unshare.try_wait() {
                self.fail(&format!("the namespace ended before systemd ran ({status})"));
            }
            let children =
                std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children")).unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next().and_then(|p| p.parse::<u32>().ok())
                && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "systemd")
            {
                return pid;
            }
            if Instant::now() > deadline {
                self.fail("systemd did not start within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads the namespace's mount table: every hazard mount must be a private tmpfs.
    fn check_private_mounts(&mut self) {
        let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid)).unwrap();
        for want in PRIVATE {
            let tmpfs = info.lines().any(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let sep = f.iter().position(|x| *x == "-").unwrap_or(f.len());
                f.get(4) == Some(want) && f.get(sep + 1) == Some(&"tmpfs")
            });
            if !tmpfs {
                self.fail(&format!("{want} is not a private tmpfs in the namespace"));
            }
        }
    }

    fn wait_until_running(&mut self) {
        let bus = self.path("/run/systemd/private");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !bus.exists() {
            if let Ok(Some(status)) = self.unshare.try_wait() {
                self.fail(&format!("systemd exited ({status})"));
            }
            if Instant::now() > deadline {
                self.fail("systemd's private bus did not appear within 120 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Blocks until start-up has finished.
        let state = self.sh("systemctl is-system-running --wait");
        if state.stdout.trim() != "running" {
            let failed = self.sh("systemctl --failed --no-pager; journalctl -b --no-pager -n 100");
            self.fail(&format!("the system is {:?}, not running:\n{}", state.stdout.trim(), failed.all()));
        }
    }

    /// A path inside the machine, seen from the host (through its root).
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{inside}", self.pid))
    }

    /// Writes a file inside the machine with `mode` (owned by root).
    pub fn write(&self, inside: &str, contents: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.path(inside);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {inside}: {e}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A command that runs inside the machine, as root, with a clean environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid.to_string(), "-a", "--", program])
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
        cmd
    }

    /// `sh -c script` inside the machine, as root.
    pub fn sh(&self, script: &str) -> Out {
        self.command("sh").args(["-c", script]).output().expect("run nsenter").into()
    }

    /// `sh -c script` inside the machine as `user`, in their home, with the
    /// XDG_RUNTIME_DIR their user manager (if any) listens on.
    pub fn sh_as(&self, user: &str, uid: u32, script: &str) -> Out {
        self.sh_as_input(user, uid, script, b"")
    }

    /// [`Machine::sh_as`] with `input` on stdin (secrets never go on a command line).
    pub fn sh_as_input(&self, user: &str, uid: u32, script: &str, input: &[u8]) -> Out {
        use std::io::Write;
        let mut child = self
            .command("runuser")
            .args(["-u", user, "--", "sh", "-c", &format!("cd && {script}")])
            .env("XDG_RUNTIME_DIR", format!("/run/user/{uid}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nsenter");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().expect("wait for nsenter").into()
    }

    /// Every journal entry, as `journalctl -o json` exports it.
    pub fn journal(&self) -> Vec<Value> {
        let out = self.sh("journalctl --sync && journalctl -o json --no-pager").ok("journalctl -o json");
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.pid != 0 {
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // When a pid namespace's init dies the kernel kills the rest and waits for them.
        let deadline = Instant::now() + Duration::from_secs(30);
        let left = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == self.pid_ns))
                .count()
        };
        while !self.pid_ns.as_os_str().is_empty() && left() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let stray = if self.pid_ns.as_os_str().is_empty() { 0 } else { left() };
        // Its cgroups, deepest first; a cgroup whose last process just exited may be
        // busy for a moment.
        let mut dirs = Vec::new();
        collect_dirs(&self.cgroup, &mut dirs);
        for d in dirs.iter().rev() {
            while let Err(e) = std::fs::remove_dir(d) {
                if e.kind() == std::io::ErrorKind::NotFound || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if !std::thread::panicking() {
            assert_eq!(stray, 0, "processes of the test machine survived its PID 1");
            assert!(!self.cgroup.exists(), "the test machine's cgroup {} could not be removed", self.cgroup.display());
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}
