//! Shared helpers of the exporter and endpoint tests: the example binaries, real servers run
//! as child processes on loopback (killed on drop), a small HTTP client, bounded waits, and the
//! rule for tools that may be missing.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The bound on every wait for a server: start-up, first scrape, an answer.
pub const WAIT: Duration = Duration::from_secs(30);

/// True when the `CI` environment variable is set (to anything but empty, `0` or `false`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The path of `tool` on `PATH`. If it is missing: in CI the test fails with a message saying
/// how to install it; elsewhere it prints a note and the caller skips (returns `None`).
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        missing(&format!("`{tool}` is not on PATH"));
    }
    found
}

/// `python3`, if it can import `module`; else as [`require_tool`] for a missing tool.
pub fn require_python_module(module: &str) -> Option<PathBuf> {
    let python = require_tool("python3")?;
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        missing(&format!("python3 cannot import `{module}`"));
        None
    }
}

fn missing(what: &str) {
    let how = "install the test tools with scripts/install-test-tools.sh (Debian packages \
               `prometheus` and `prometheus-pushgateway`, Python package `opentelemetry-proto`)";
    if in_ci() {
        panic!("{what}; CI is set, so this test cannot be skipped: {how}");
    }
    eprintln!("note: skipping: {what}; {how}");
}

/// An example binary that `cargo test` builds next to the test binaries.
pub fn example_binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run the whole `cargo test` (which builds the examples) or \
         `cargo build --example {name}` first",
        path.display()
    );
    path
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory named after `label`, the process and a counter.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "telemetry-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process that is killed (and reaped) when dropped, so a failing test leaves no
/// server behind. Its standard error goes to `log`, if given, for failure messages.
pub struct ChildGuard {
    child: Child,
    name: String,
    log: Option<PathBuf>,
}

impl ChildGuard {
    /// Spawns `command`, with standard error written to `log` (or discarded).
    pub fn spawn(name: &str, mut command: Command, log: Option<&Path>) -> Self {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("create the log file")),
            None => Stdio::null(),
        };
        let child = command
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ChildGuard {
            child,
            name: name.to_owned(),
            log: log.map(Path::to_path_buf),
        }
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return String::from("(no log)");
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}):\n{}",
                self.name,
                self.log_tail()
            );
        }
    }

    /// The process, e.g. to take its standard output.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example key-value server, started with `--port 0` on loopback.
pub struct ExampleServer {
    pub addr: SocketAddr,
    pub guard: ChildGuard,
}

impl ExampleServer {
    /// Starts `examples/server.rs` with `extra` arguments; it stops by itself after 120 s in
    /// any case. Waits (bounded) for its address on the first line of its standard output.
    pub fn start(extra: &[&str]) -> Self {
        let mut command = Command::new(example_binary("server"));
        command
            .args(["--port", "0", "--bind", "127.0.0.1", "--exit-after", "120"])
            .args(extra)
            .stdout(Stdio::piped());
        let mut guard = ChildGuard::spawn("the example server", command, None);
        let stdout = guard.child_mut().stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining, so the server never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx
            .recv_timeout(WAIT)
            .expect("the example server printed no address within 30 s");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        ExampleServer { addr, guard }
    }

    /// `GET path` on the server.
    pub fn get(&self, path: &str) -> HttpResponse {
        request(self.addr, "GET", path, &[], b"")
    }
}

/// A port on 127.0.0.1 that was free a moment ago (for servers that take a port, not a
/// listening socket).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Calls `probe` every 200 ms until it gives `Some`, for at most `timeout`; panics with
/// `what` (and the probe's last complaint) otherwise.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("a UTF-8 body")
    }
}

/// One HTTP/1.1 request over a new connection (`Connection: close`), with 10 s timeouts.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} http://{addr}{path} failed: {e}"))
}

/// [`request`], with failures as errors.
pub fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "malformed answer: {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes a query parameter value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `promtool check metrics` on `text`; `Err` holds its complaints.
pub fn promtool_check(promtool: &Path, text: &str) -> Result<(), String> {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = text.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool failed: {e}"))?;
    let _ = writer.join();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && complaints.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics: {}: {complaints}",
            out.status
        ))
    }
}

/// The samples of an exposition text: `(name, labels as written, value text)`.
pub fn samples(text: &str) -> Vec<(String, String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some((name.to_owned(), labels.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The value of the sample `name{labels}` (labels exactly as written), if present.
pub fn sample(text: &str, name: &str, labels: &str) -> Option<String> {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| v)
}
