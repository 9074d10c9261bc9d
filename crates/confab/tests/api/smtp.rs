//! A real SMTP server for the mail tests: Python's `aiosmtpd` (from PyPI), started per test on a
//! free port as a sink that stores each message in a directory (`support/smtp_sink.py`).
//!
//! The interpreter is `CONFAB_TEST_PYTHON` when set (scripts/test.sh sets it), else a venv under
//! the target directory's `tmp/confab-pytools`, created on first use with `pip install aiosmtpd`.

use serde::Deserialize;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const AIOSMTPD: &str = "aiosmtpd==1.4.6";

fn has_aiosmtpd(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python with aiosmtpd, installing it into a venv the first time.
fn python() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = std::env::var_os("CONFAB_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("confab-pytools");
    let py = venv.join("bin/python");
    if has_aiosmtpd(&py) {
        return py;
    }
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                AIOSMTPD,
            ])
            .status()
            .is_ok_and(|s| s.success());
    assert!(
        ok && has_aiosmtpd(&py),
        "cannot set up aiosmtpd in {} (needs python3 with venv, and PyPI)",
        venv.display()
    );
    py
}

/// One stored message, parts decoded by Python's `email` package.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }
    pub fn html(&self) -> &str {
        self.html.as_deref().unwrap_or("")
    }
    /// The first URL in the plain-text part that contains `part`.
    pub fn link(&self, part: &str) -> String {
        self.text()
            .split_whitespace()
            .find(|w| w.starts_with("http") && w.contains(part))
            .unwrap_or_else(|| panic!("no {part} link in {}", self.text()))
            .to_string()
    }
}

pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    _stdin: ChildStdin,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sink port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("sink printed {line:?}, not a port"));
        SmtpSink {
            port,
            dir,
            child,
            _stdin: stdin,
        }
    }

    /// Every message stored so far, in arrival order.
    pub fn messages(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                serde_json::from_slice(&std::fs::read(p).expect("read mail")).expect("mail json")
            })
            .collect()
    }

    /// Waits until at least `n` messages are stored.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} messages, have {}: {m:#?}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Makes the sink hold back its answer for messages to recipients containing `rcpt`.
    pub fn set_slow(&self, rcpt: Option<&str>) {
        self.control("slow", rcpt);
    }

    /// Makes the sink refuse every message with `reply` (e.g. `451 4.3.0 later`).
    #[allow(dead_code)]
    pub fn set_fail(&self, reply: Option<&str>) {
        self.control("fail", reply);
    }

    fn control(&self, name: &str, value: Option<&str>) {
        let p = self.dir.path().join(name);
        match value {
            Some(v) => std::fs::write(p, v).expect("control file"),
            None => {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
