//! `confab shards add` run as a process against PostgreSQL servers of the test's own (a control
//! server, s1 with a streaming replica r1, s2): what it says when it cannot connect (the cause,
//! never the password) and what it refuses to register (a primary another deployment owns, a
//! replica it cannot reach or that does not replicate the primary), with `--force` letting an
//! operator proceed. A refusal exits non-zero and records nothing.

use crate::process::free_port;
use crate::sharding::Rig;
use std::process::Command;

/// One `confab shards ...` run on the control database `control`: (success, stdout + stderr).
fn shards(control: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("shards")
        .args(args)
        .env("CONFAB_POSTGRES__CONTROL", control)
        .env("CONFAB_LOG", "error")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run confab");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn refused(control: &str, args: &[&str], says: &[&str]) -> String {
    let (ok, text) = shards(control, args);
    assert!(!ok, "confab shards {args:?} should fail: {text}");
    for s in says {
        assert!(
            text.contains(s),
            "confab shards {args:?} should say {s:?}:\n{text}"
        );
    }
    text
}

fn registered(rig: &Rig, db: &str) -> String {
    rig.control.sql(
        db,
        "SELECT coalesce(string_agg(name, ',' ORDER BY name), '') FROM shard_servers",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_add_names_the_cause_when_it_cannot_connect() {
    let rig = Rig::start().await;
    tokio::task::block_in_place(|| {
        rig.control.sql("postgres", "CREATE DATABASE ctl");
        let control = rig.control.dsn("ctl");
        let port = free_port();

        // Nothing listens on the port: refused, and the password stays out of the message.
        let text = refused(
            &control,
            &[
                "add",
                "x",
                "--primary",
                &format!("postgres://postgres:hunter2@127.0.0.1:{port}/postgres"),
            ],
            &[&format!(
                "cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
            )],
        );
        assert!(!text.contains("hunter2"), "{text}");
        // A database the server does not have.
        refused(
            &control,
            &["add", "x", "--primary", &rig.s1.dsn("nope")],
            &[&format!(
                "cannot connect to PostgreSQL at 127.0.0.1:{}: database \"nope\" does not exist",
                rig.s1.port()
            )],
        );
        // A host name that does not resolve (.invalid never does).
        refused(
            &control,
            &[
                "add",
                "x",
                "--primary",
                "postgres://postgres@nohost.invalid:5432/postgres",
            ],
            &["cannot connect to PostgreSQL at nohost.invalid:5432: unknown host \"nohost.invalid\""],
        );
        assert_eq!(registered(&rig, "ctl"), "");

        // The control database itself: `shards list` (and every command) names the cause.
        refused(
            &format!("postgres://postgres:hunter2@127.0.0.1:{port}/ctl"),
            &["list"],
            &[&format!(
                "cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
            )],
        );
        refused(
            &rig.control.dsn("missing"),
            &["list"],
            &["database \"missing\" does not exist"],
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_add_refuses_another_deployments_primary_and_foreign_replicas_unless_forced() {
    let rig = Rig::start().await;
    tokio::task::block_in_place(|| {
        for (server, db) in [
            (&rig.control, "one"),
            (&rig.control, "two"),
            (&rig.s1, "data"),
            (&rig.s2, "data"),
        ] {
            server.sql("postgres", &format!("CREATE DATABASE {db}"));
        }
        // The replica has the new database once it has replayed its creation.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while rig.r1.try_sql("data", "SELECT 1").is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "r1 never replayed CREATE DATABASE"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let (one, two) = (rig.control.dsn("one"), rig.control.dsn("two"));
        let (s1, r1, s2) = (rig.s1.dsn("data"), rig.r1.dsn("data"), rig.s2.dsn("data"));

        // Deployment one registers s1 with its replica; doing it again changes nothing.
        for _ in 0..2 {
            let (ok, text) = shards(&one, &["add", "s1", "--primary", &s1, "--replica", &r1]);
            assert!(ok, "{text}");
            assert!(text.contains("server s1 registered"), "{text}");
        }
        // The same database under a second name of the same deployment: refused.
        refused(
            &one,
            &["add", "again", "--primary", &s1],
            &[
                "already registered in this deployment as server s1",
                "--force",
            ],
        );
        assert_eq!(registered(&rig, "one"), "s1");

        // Deployment two may not take s1's database: refused, nothing recorded on either side.
        refused(
            &two,
            &["add", "mine", "--primary", &s1],
            &[
                "already belongs to another Confab deployment",
                "nothing was recorded",
            ],
        );
        assert_eq!(registered(&rig, "two"), "");
        let me = rig.control.sql("one", "SELECT id FROM deployment");
        assert_eq!(
            rig.s1.sql(
                "data",
                "SELECT deployment_id || ' ' || server_name FROM deployment_owner"
            ),
            format!("{me} s1")
        );

        // Replicas: one nobody answers at, a primary that is no replica, and a replica of
        // another primary (r1 replays s1, not s2). Each refused; s2 is not registered.
        let port = free_port();
        refused(
            &one,
            &[
                "add",
                "s2",
                "--primary",
                &s2,
                "--replica",
                &format!("postgres://postgres:hunter2@127.0.0.1:{port}/data"),
            ],
            &[&format!(
                "cannot connect to PostgreSQL at 127.0.0.1:{port}: connection refused"
            )],
        );
        refused(
            &one,
            &["add", "s2", "--primary", &s2, "--replica", &s1],
            &["is not a replica: it is not in recovery"],
        );
        refused(
            &one,
            &["add", "s2", "--primary", &s2, "--replica", &r1],
            &["is not a replica of", "system identifier"],
        );
        assert_eq!(registered(&rig, "one"), "s1");
        assert_eq!(
            rig.s2
                .sql("data", "SELECT to_regclass('deployment_owner') IS NULL"),
            "t",
            "a refused server is not even migrated"
        );

        // --force: the operator's call. s2 with the foreign replica is registered...
        let (ok, text) = shards(
            &one,
            &["add", "s2", "--primary", &s2, "--replica", &r1, "--force"],
        );
        assert!(ok, "{text}");
        assert_eq!(registered(&rig, "one"), "s1,s2");
        // ...and deployment two takes s1's database over: it owns it from now on.
        let (ok, text) = shards(&two, &["add", "mine", "--primary", &s1, "--force"]);
        assert!(ok, "{text}");
        assert_eq!(registered(&rig, "two"), "mine");
        let theirs = rig.control.sql("two", "SELECT id FROM deployment");
        assert_ne!(theirs, me);
        assert_eq!(
            rig.s1.sql(
                "data",
                "SELECT deployment_id || ' ' || server_name FROM deployment_owner"
            ),
            format!("{theirs} mine")
        );
        // The help says what --force does.
        let (_, help) = shards(&one, &["add", "--help"]);
        assert!(
            help.contains("--force") && help.contains("deployment") && help.contains("replica"),
            "{help}"
        );
    });
}

/// Nodes of one deployment must share `secret`: a node started with another one is refused
/// at start (tokens made by either would be refused by the other), and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_secret_than_the_fleet_is_refused_at_start() {
    use crate::pg::PgServer;
    use crate::process::{serve, wait_ready};
    use std::time::{Duration, Instant};
    let (control, s1) =
        tokio::task::spawn_blocking(|| (PgServer::start("control"), PgServer::start("s1")))
            .await
            .unwrap();
    let ctl = tokio::task::block_in_place(|| {
        control.sql("postgres", "CREATE DATABASE ctl");
        s1.sql("postgres", "CREATE DATABASE shard");
        let ctl = control.dsn("ctl");
        let (ok, text) = shards(&ctl, &["add", "s1", "--primary", &s1.dsn("shard")]);
        assert!(ok, "{text}");
        let (ok, text) = shards(&ctl, &["spread", "s1"]);
        assert!(ok, "{text}");
        ctl
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let node = |secret: &str| {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let p = serve(
            dir.path(),
            port,
            &[],
            &[
                ("CONFAB_POSTGRES__CONTROL", ctl.clone()),
                ("CONFAB_SECRET", secret.to_string()),
                ("CONFAB_CONNECTIONS__DRAIN_SECS", "0".to_string()),
            ],
        );
        (p, format!("http://127.0.0.1:{port}"), dir)
    };
    let (_a, base_a, _da) = node("the-fleet-secret-0123456789abcdef");
    wait_ready(&http, &base_a).await;

    // Another secret: the process stops by itself, unsuccessfully, and says why.
    let dir_b = tempfile::tempdir().unwrap();
    let mut b = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--data",
        ])
        .arg(dir_b.path())
        .env("CONFAB_POSTGRES__CONTROL", &ctl)
        .env("CONFAB_SECRET", "another-secret-0123456789abcdef!")
        .env("CONFAB_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = b.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = b.kill();
            panic!("a node with another secret kept running");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut text = String::new();
    std::io::Read::read_to_string(&mut b.stderr.take().unwrap(), &mut text).unwrap();
    assert!(!status.success(), "{text}");
    assert!(
        text.contains("differs from the one the other nodes of this deployment sign with"),
        "{text}"
    );
    assert!(
        !text.contains("another-secret"),
        "the secret is never printed: {text}"
    );

    // The fleet's own secret: a second node joins.
    let (_c, base_c, _dc) = node("the-fleet-secret-0123456789abcdef");
    wait_ready(&http, &base_c).await;
}
