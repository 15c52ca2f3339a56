//! Test harness: runs the real fusegate binary on a free port with a temporary
//! data directory, and connects real clients to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use std::time::SystemTime;

use tokio_postgres::{Client, NoTls};

pub struct TestServer {
    child: Option<Child>,
    pub port: u16,
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    /// The server's log, kept for failure messages.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Flags beyond --listen, --data-dir and --log.
    args: Vec<String>,
}

impl TestServer {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// Starts a server with more flags, on a fresh temporary data directory.
    pub fn start_with(args: &[&str]) -> TestServer {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("data");
        let mut server = TestServer::new(&dir, args);
        server.spawn();
        server._temp = Some(temp);
        server
    }

    /// Starts a server on `data_dir` (kept after the server stops).
    pub fn start_in(data_dir: &Path) -> TestServer {
        let mut server = TestServer::new(data_dir, &[]);
        server.spawn();
        server
    }

    fn new(data_dir: &Path, args: &[&str]) -> TestServer {
        TestServer {
            child: None,
            port: 0,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            log: Default::default(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn spawn(&mut self) {
        // FUSEGATE_TEST_SERVER runs the tests against another build of the
        // server (e.g. target/release/fusegate, to time or profile a suite).
        let binary = std::env::var_os("FUSEGATE_TEST_SERVER")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_fusegate").into());
        let mut command = Command::new(binary);
        // The server dies with the test thread that started it, even if the
        // test process is killed before it can clean up.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--log")
            .arg("info,fusegate=debug")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start fusegate");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        let log = self.log.clone();
        // With FUSEGATE_TEST_LOG_DIR (./scripts/test sets it) every server's
        // log is also kept there, for the scan for leaked secrets.
        let mut kept = std::env::var_os("FUSEGATE_TEST_LOG_DIR").and_then(|dir| {
            static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = Path::new(&dir).join(format!("server-{}-{n}.log", std::process::id()));
            std::fs::File::create(path).ok()
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("fusegate ready")
                    && let Some(addr) = line.split("listen=").nth(1)
                {
                    let addr = addr
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                }
                if let Some(file) = kept.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
                log.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "fusegate did not start:\n{}",
                    self.log.lock().unwrap().join("\n")
                )
            });
        self.port = addr.rsplit(':').next().unwrap().parse().expect("port");
        self.child = Some(child);
    }

    /// The server's resident memory, from /proc (Linux), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    }

    /// CPU time the server's threads whose name starts with `prefix` have
    /// used, from /proc (Linux): which runtime a query ran on shows here.
    pub fn thread_cpu(&self, prefix: &str) -> Duration {
        // SAFETY: sysconf only reads its integer argument.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let ticks: u64 = self.thread_ticks(prefix).iter().sum();
        Duration::from_millis(ticks * 1000 / ticks_per_second)
    }

    /// How many of the server's threads have a name starting with `prefix`.
    pub fn threads(&self, prefix: &str) -> usize {
        self.thread_ticks(prefix).len()
    }

    /// User + system clock ticks of each thread whose name starts with `prefix`.
    fn thread_ticks(&self, prefix: &str) -> Vec<u64> {
        let pid = self.child.as_ref().expect("running").id();
        let mut ticks = Vec::new();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"));
        for task in tasks.into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue; // the thread ended meanwhile
            };
            // `tid (comm) state ...`: comm may hold spaces, so split at the
            // last ')'; utime and stime are the 12th and 13th fields after it.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let comm = head.split_once('(').map_or("", |(_, c)| c);
            if comm.starts_with(prefix) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                ticks.push(fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap());
            }
        }
        ticks
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn conn_str(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=tester dbname={db}", self.port)
    }

    pub async fn client(&self) -> Client {
        self.client_on("default").await
    }

    pub async fn client_on(&self, db: &str) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.conn_str(db), NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}\n{}", self.log()));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().expect("wait")
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Restarts on the same data directory with other flags (beyond --listen,
    /// --data-dir and --log).
    pub fn restart_with(&mut self, args: &[&str]) {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self.restart();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The SQLSTATE of a failed statement.
pub fn sqlstate(err: &tokio_postgres::Error) -> String {
    err.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no SQLSTATE: {err}"))
}

/// Runs `sql` with the simple protocol and returns rows as text.
pub async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    try_rows(client, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
}

/// [`rows`], for a statement that may fail.
pub async fn try_rows(
    client: &Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// One text value per row, for single-column results.
pub async fn column(client: &Client, sql: &str) -> Vec<Option<String>> {
    rows(client, sql)
        .await
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect()
}

pub async fn scalar(client: &Client, sql: &str) -> String {
    column(client, sql).await.remove(0).expect("not null")
}

/// Ages every file under `dir`, as if written two hours ago (VACUUM never
/// removes unreferenced objects younger than a few minutes).
pub fn age_files(dir: &Path) {
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            age_files(&path);
        } else {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
    }
}

pub fn count_files(dir: &Path, part: &str) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            n += count_files(&path, part);
        } else if path.to_string_lossy().contains(part) {
            n += 1;
        }
    }
    n
}

/// Runs psql on `conninfo` with `args` (after `-X`), `password` in
/// PGPASSWORD and `stdin` on its standard input: (stdout, stderr, success).
pub fn psql(
    conninfo: &str,
    args: &[&str],
    password: Option<&str>,
    stdin: &str,
) -> (String, String, bool) {
    use std::io::Write;
    let mut command = Command::new("psql");
    command
        .arg(conninfo)
        .arg("-X")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let mut child = command.spawn().expect("psql is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
        out.status.success(),
    )
}
