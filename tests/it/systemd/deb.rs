//! The Debian package under a real systemd: the runbook's `apt install` of what
//! scripts/package.sh built, inside a machine whose /usr, /etc and /var are overlays on
//! its own tmpfs (the host gets nothing: checked after), enables and starts nothing; the
//! provisioner from the package enables a user's timer; the packaged unit, /usr/bin's
//! binary and the real Claude Code CLI back the user's login up; `dpkg -r` stops the
//! timers and leaves the user's login, Vault copy and roster alone.

use super::*;

#[test]
fn the_package_installs_nothing_running_and_its_unit_syncs_a_provisioned_user() {
    let deb = crate::package::deb::package();
    let bao = Bao::start();
    let cli_dir = tempfile::tempdir().unwrap();
    let cli = RealCli::start(cli_dir.path());
    let (prefix, rel) = cli_prefix();
    let alice = TestUser::new();
    let host = HostBefore::take(&[&alice]);
    let hostname = format!("cas-deb-{}", &random_secret("host-")[5..13]);
    {
        let m = Machine::boot_writable_usr(&hostname, &[(&prefix, "claude-code")]);
        let ws = Station { m, cli, bao: &bao };
        let m = &ws.m;

        // ---- Install: files in place, the roster's directory made, nothing enabled or running.
        assert_eq!(deb.parent(), Some(Path::new(REPO).join("target/debian").as_path()), "the runbook's path");
        let install = runbook("apt install ./target/debian/claude-auth-sync_*.deb", "");
        let out = m.sh(&format!("cd {REPO} && {install}")).ok("the runbook's apt install");
        assert_no_leaks("apt install", &out.all());
        let which = m.sh("command -v claude-auth-sync").ok("command -v");
        assert_eq!(which.stdout.trim(), "/usr/bin/claude-auth-sync", "the packaged binary is the one on PATH");
        let etc = m.sh("stat -c %a /etc/claude-auth-sync").ok("stat");
        assert_eq!(etc.stdout.trim(), "700", "postinst made the roster's directory");
        let units = "claude-auth-provision.timer claude-auth-provision.service claude-auth-sync@x.timer";
        let enabled = m.sh(&format!("systemctl is-enabled {units}"));
        assert_eq!(
            enabled.stdout.split_whitespace().collect::<Vec<_>>(),
            ["disabled", "static", "disabled"],
            "{}",
            enabled.all()
        );
        let active = m.sh(&format!("systemctl is-active {units}"));
        assert!(active.stdout.split_whitespace().all(|s| s == "inactive"), "nothing runs: {}", active.all());
        let fragment = m.sh("systemctl show -p FragmentPath -p ExecStart claude-auth-provision.service").ok("show");
        assert!(
            fragment.stdout.contains("FragmentPath=/lib/systemd/system/claude-auth-provision.service")
                || fragment.stdout.contains("FragmentPath=/usr/lib/systemd/system/claude-auth-provision.service"),
            "{}",
            fragment.stdout
        );
        assert!(fragment.stdout.contains("path=/usr/bin/claude-auth-sync "), "{}", fragment.stdout);
        // The runbook's next step enables the routine provisioner; stopped again so that
        // no hourly run happens while the test counts runs.
        m.sh(&runbook("systemctl enable --now claude-auth-provision.timer", "")).ok("enable the provisioner's timer");
        let state =
            m.sh("systemctl is-enabled claude-auth-provision.timer; systemctl is-active claude-auth-provision.timer");
        assert_eq!(state.stdout.split_whitespace().collect::<Vec<_>>(), ["enabled", "active"], "{}", state.all());
        m.sh("systemctl stop claude-auth-provision.timer").ok("stop the provisioner's timer");

        // Test only, as in the runbook's test: the pinned CLI on the service's PATH, the
        // mocks' environment and CA.
        m.sh(&format!(
            "ln -s /usr/local/lib/claude-code/{} /usr/local/bin/claude && mkdir -p {TEST_LIB}",
            rel.display()
        ))
        .ok("the CLI link");
        m.write(&format!("{TEST_LIB}/test-ca.pem"), &std::fs::read_to_string(&ws.cli.ca_file).unwrap(), 0o644);
        m.write("/etc/systemd/system/claude-auth-sync@.service.d/test-mocks.conf", &test_mocks_dropin(&ws.cli), 0o644);
        m.sh("systemctl daemon-reload").ok("daemon-reload");

        // ---- The provisioner from the package enables alice's timer.
        let roster = format!(
            "vault:\n  address: {addr}\n  auth: token\n  token_period: 32d\nusers:\n  - name: {user}\n    email: {user}@example.com\n",
            addr = ws.bao.addr,
            user = alice.name
        );
        m.write("/etc/claude-auth-sync/roster.yaml", &roster, 0o600);
        let out = ws.provision("", &alice.name);
        assert_eq!(out.code, 0, "provision: {}", out.all());
        assert_no_leaks("provision", &out.all());
        secret(std::fs::read_to_string(alice.file("vault-token")).unwrap());
        let timer = format!("claude-auth-sync@{}.timer", alice.name);
        let state = m.sh(&format!("systemctl is-enabled {timer}; systemctl is-active {timer}"));
        assert_eq!(state.stdout.split_whitespace().collect::<Vec<_>>(), ["enabled", "active"], "{}", state.all());
        // The test starts each run itself: a timer firing meanwhile would add a run.
        m.sh(&format!("systemctl stop {timer}")).ok("stop the timer");

        // ---- alice logs in; the packaged unit backs the login up.
        let (a1, r1) = issue(&ws.cli.backend, "alice");
        let first = login(&a1, &r1, now_ms() + 8 * HOUR_MS, now_ms() + 20 * 86_400_000);
        ws.log_in(&alice, &first);
        let line = ws.sync(&alice, "0", "OK", None);
        assert_eq!(line.action(), Some("backed_up"), "{line}");
        let exec = m.sh(&format!("systemctl show -p ExecStart claude-auth-sync@{}.service", alice.name)).ok("show");
        assert!(exec.stdout.contains("path=/usr/bin/claude-auth-sync "), "{}", exec.stdout);
        assert_same!(ws.vault_latest(&alice).unwrap().1["claudeAiOauth"], first, "Vault holds the login");

        // ---- Remove: the timers stop, the units are gone; the login and the roster stay.
        m.sh(&format!("systemctl start {timer} && systemctl is-active {timer}")).ok("the timer runs again");
        let out = m.sh("dpkg -r claude-auth-sync").ok("dpkg -r");
        assert_no_leaks("dpkg -r", &out.all());
        assert!(!m.path("/usr/bin/claude-auth-sync").exists(), "the binary is removed");
        let after =
            m.sh(&format!("systemctl is-active {timer}; systemctl show -p LoadState claude-auth-provision.service"));
        assert_eq!(
            after.stdout.split_whitespace().collect::<Vec<_>>(),
            ["inactive", "LoadState=not-found"],
            "{}",
            after.all()
        );
        assert!(m.path("/etc/claude-auth-sync/roster.yaml").exists(), "the roster stays");
        assert_same!(ws.creds(&alice)["claudeAiOauth"], first, "the login stays");
    }
    drop(alice);
    host.check();
}
