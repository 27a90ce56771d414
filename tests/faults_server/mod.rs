//! A loopback HTTP server that misbehaves on purpose, for the fault-injection and hostile-state
//! tests: it refuses, hangs, trickles, fails with a status, answers too much or nonsense, or
//! speaks plain HTTP (or garbage) where TLS is expected; switched to [`Mode::Ok`] it behaves
//! like a real collector again. It records every connection, request and body, and what it
//! answered. Only 127.0.0.1 is ever bound.
//!
//! Also the helpers both test files share: bounded waits, temporary state directories, the
//! spool's contents, and a logger that keeps every line.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A real collector: 200 `{}` to a JSON body, 400 to anything else.
    Ok,
    /// As [`Mode::Ok`], answering after a random delay of up to this (the collector has the
    /// report before the client hears back).
    OkAfter(Duration),
    /// Nothing listens on the port: the listener was bound, then dropped (connection refused).
    Refuse,
    /// Accept the connection, read nothing, answer nothing (until the server stops, 30 s at most).
    Hang,
    /// Read the request, then send a valid 200 answer one byte at a time, this far apart.
    Trickle(Duration),
    /// This status, with an optional `Retry-After` in seconds.
    Status(u16, Option<u64>),
    /// 200 with a body of this many bytes ([`OVERSIZED_PROBE`] bytes first, then a pause to see
    /// whether the client hangs up, then the rest if it does not).
    Oversized(usize),
    /// 200 with an HTML page instead of JSON.
    NotJson,
    /// 200 with a chunked body cut off in the middle of a chunk.
    TruncatedChunked,
    /// A status line that is not HTTP.
    GarbageStatus,
    /// Plain HTTP at once, whatever the client sends (a TLS client gets no handshake).
    PlainHttp,
    /// Bytes that are no protocol at all, at once.
    Garbage,
}

/// How much of an oversized body is sent before the server checks whether the client is still
/// reading: a little more than the 64 KiB the reporter reads of an answer.
pub const OVERSIZED_PROBE: usize = 80 << 10;

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    pub connections: AtomicUsize,
    /// Complete requests read (headers and body).
    pub requests: AtomicUsize,
    /// Connections the client closed after a complete answer.
    pub finished: AtomicUsize,
    /// Bodies answered with a 2xx status line (recorded just before the answer goes out).
    pub accepted: Mutex<Vec<String>>,
    /// Bodies answered otherwise (an error status, no answer, a broken answer).
    pub refused: Mutex<Vec<String>>,
    /// Oversized answers: body bytes sent before the client hung up, and whether it did.
    pub hangups: Mutex<Vec<(usize, bool)>>,
}

struct Acceptor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// The server. Dropping it stops it (hanging and trickling connections end too).
pub struct FaultServer {
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    acceptor: Mutex<Option<Acceptor>>,
}

impl FaultServer {
    /// A server on an ephemeral 127.0.0.1 port, answering as `mode` says.
    pub fn start(mode: Mode) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = FaultServer {
            addr: listener.local_addr().unwrap(),
            seen: Arc::new(Seen::default()),
            mode: Arc::new(Mutex::new(mode.clone())),
            stop: Arc::new(AtomicBool::new(false)),
            acceptor: Mutex::new(None),
        };
        if mode != Mode::Refuse {
            server.listen(listener);
        }
        server
    }

    /// `http://127.0.0.1:PORT/v1/report`.
    pub fn url(&self) -> String {
        format!("http://{}/v1/report", self.addr)
    }

    /// `https://127.0.0.1:PORT/v1/report`: this server never speaks TLS.
    pub fn https_url(&self) -> String {
        format!("https://{}/v1/report", self.addr)
    }

    /// Answers new connections as `mode` says. To and from [`Mode::Refuse`], the listener is
    /// dropped, or bound again on the same port.
    pub fn set_mode(&self, mode: Mode) {
        let mut acceptor = lock(&self.acceptor);
        *lock(&self.mode) = mode.clone();
        match (mode == Mode::Refuse, acceptor.take()) {
            (true, Some(running)) => {
                running.stop.store(true, Ordering::SeqCst);
                let _ = running.thread.join();
            }
            (false, None) => {
                drop(acceptor);
                let listener = bind_again(self.addr);
                self.listen(listener);
            }
            (_, running) => *acceptor = running,
        }
    }

    fn listen(&self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, mode, stop_all, stop_this) = (
            self.seen.clone(),
            self.mode.clone(),
            self.stop.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop_all.load(Ordering::SeqCst)
                && !stop_this.load(Ordering::SeqCst)
                && Instant::now() < deadline
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        seen.connections.fetch_add(1, Ordering::SeqCst);
                        let mode = lock(&mode).clone();
                        let (seen, stop) = (seen.clone(), stop_all.clone());
                        std::thread::spawn(move || serve(stream, mode, &seen, &stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        *lock(&self.acceptor) = Some(Acceptor { stop, thread });
    }

    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.seen.requests.load(Ordering::SeqCst)
    }

    pub fn finished(&self) -> usize {
        self.seen.finished.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> Vec<String> {
        lock(&self.seen.accepted).clone()
    }

    pub fn refused(&self) -> Vec<String> {
        lock(&self.seen.refused).clone()
    }

    pub fn hangups(&self) -> Vec<(usize, bool)> {
        lock(&self.seen.hangups).clone()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(running) = lock(&self.acceptor).take() {
            running.stop.store(true, Ordering::SeqCst);
            let _ = running.thread.join();
        }
    }
}

/// The same port again (std sets `SO_REUSEADDR`); retried briefly in case the port is busy.
fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpListener::bind(addr) {
            Ok(listener) => return listener,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot bind {addr} again: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A request as read: its body, or `None` if the client went away first.
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length.min(16 << 20)];
    reader.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// Waits (at most `within`) for the client to close the connection; true if it did.
fn client_closes(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Sleeps `pause`, in small steps; false if the server is stopping.
fn nap(pause: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + pause;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5).min(pause));
    }
    true
}

fn serve(mut stream: TcpStream, mode: Mode, seen: &Seen, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    match mode {
        Mode::Refuse => {}
        Mode::Hang => {
            // Holds the connection without reading or answering.
            let _ = nap(Duration::from_secs(30), stop);
        }
        Mode::PlainHttp | Mode::Garbage => {
            // Whatever arrives (a TLS ClientHello): read it, answer in the wrong protocol.
            let mut hello = [0u8; 4096];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.read(&mut hello);
            let answer: Vec<u8> = if mode == Mode::PlainHttp {
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 33\r\nconnection: close\r\n\r\nThis port speaks plain HTTP only."
                    .to_vec()
            } else {
                garbage(1024)
            };
            let _ = stream.write_all(&answer);
            client_closes(&mut stream, Duration::from_secs(3));
        }
        _ => {
            let Some(body) = read_request(&stream) else {
                return;
            };
            seen.requests.fetch_add(1, Ordering::SeqCst);
            answer(stream, mode, body, seen, stop);
        }
    }
}

fn answer(mut stream: TcpStream, mode: Mode, body: String, seen: &Seen, stop: &AtomicBool) {
    let is_json = serde_json::from_str::<serde_json::Value>(&body).is_ok();
    let simple = |status: u16, extra: &str, content: &str| {
        format!(
            "HTTP/1.1 {status} {}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{content}",
            if status < 300 { "OK" } else { "Failed" },
            content.len()
        )
    };
    let (accepted, bytes) = match &mode {
        Mode::Ok if is_json => (true, simple(200, "", "{}").into_bytes()),
        Mode::Ok => (false, simple(400, "", r#"{"error":"not JSON"}"#).into_bytes()),
        Mode::OkAfter(most) => {
            let nanos = u64::try_from(most.as_nanos()).unwrap_or(u64::MAX).max(1);
            let delay = Duration::from_nanos(uuid::Uuid::new_v4().as_u128() as u64 % nanos);
            if !nap(delay, stop) {
                return;
            }
            (is_json, simple(200, "", "{}").into_bytes())
        }
        Mode::Status(code, retry_after) => {
            let retry = retry_after
                .map(|s| format!("retry-after: {s}\r\n"))
                .unwrap_or_default();
            ((200..300).contains(code), simple(*code, &retry, "").into_bytes())
        }
        Mode::NotJson => {
            let page = "<html><body><h1>It works!</h1></body></html>";
            let text = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            (true, text.into_bytes())
        }
        Mode::TruncatedChunked => (
            true,
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n40\r\n{\"latest_version\":\"1."
                .to_vec(),
        ),
        Mode::GarbageStatus => (
            false,
            b"HTPT/1.1 two hundred OKAY\r\n\x00\x01\x02: \xff\xfe\r\n\r\n{}".to_vec(),
        ),
        Mode::Trickle(every) => {
            let text = simple(200, "", "{}");
            for byte in text.as_bytes() {
                if stream.write_all(&[*byte]).is_err() || !nap(*every, stop) {
                    lock(&seen.refused).push(body);
                    return;
                }
            }
            lock(&seen.accepted).push(body);
            if client_closes(&mut stream, Duration::from_secs(3)) {
                seen.finished.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
        Mode::Oversized(size) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
            );
            lock(&seen.accepted).push(body);
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            let chunk = vec![b' '; 16 << 10];
            let mut sent = 0;
            while sent < OVERSIZED_PROBE.min(*size) {
                let n = chunk.len().min(*size - sent);
                if stream.write_all(&chunk[..n]).is_err() {
                    lock(&seen.hangups).push((sent, true));
                    return;
                }
                sent += n;
            }
            if client_closes(&mut stream, Duration::from_secs(3)) {
                lock(&seen.hangups).push((sent, true));
                return;
            }
            // The client is still reading: send all of it.
            while sent < *size {
                let n = chunk.len().min(*size - sent);
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                sent += n;
            }
            lock(&seen.hangups).push((sent, false));
            return;
        }
        Mode::Refuse | Mode::Hang | Mode::PlainHttp | Mode::Garbage => unreachable!(),
    };
    // Recorded before the answer goes out, so that whoever sees the answer sees the record.
    if accepted {
        lock(&seen.accepted).push(body);
    } else {
        lock(&seen.refused).push(body);
    }
    let _ = stream.write_all(&bytes);
    if mode == Mode::TruncatedChunked {
        // The connection ends in the middle of a chunk.
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return;
    }
    if client_closes(&mut stream, Duration::from_secs(3)) {
        seen.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// Deterministic bytes that are no protocol (no TLS record type, no HTTP).
fn garbage(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8 | 0x80
        })
        .collect()
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (at most `within`) for `done`, polling every 5 ms.
pub fn eventually_within(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (at most 10 s) for `done`.
pub fn eventually(what: &str, done: impl FnMut() -> bool) {
    eventually_within(Duration::from_secs(10), what, done);
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("telemetry-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The spooled reports in `state`, oldest first: (file name, contents).
pub fn spool(state: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(state.join("spool"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    // Whole reports, waiting or claimed for sending (`.sending-{pid}`); a
                    // write in progress is a `.partial` file.
                    let whole = name.ends_with(".json") || name.contains(".json.sending-");
                    if !(name.starts_with("report-") && whole) {
                        return None;
                    }
                    let text = std::fs::read_to_string(e.path()).ok()?;
                    // The report itself, after the line that seals it.
                    let report = text.split_once('\n').map_or(text.as_str(), |(_, r)| r);
                    Some((name, report.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Report files in the spool (waiting, being sent or being written) and their total size on
/// disk in bytes: what the caps bound.
pub fn spool_size(state: &Path) -> (usize, u64) {
    let files: Vec<u64> = std::fs::read_dir(state.join("spool"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("report-") && !name.ends_with(".corrupt")
                })
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default();
    (files.len(), files.iter().sum())
}

/// Asserts that every one of `spooled` was accepted exactly once.
pub fn each_delivered_once(accepted: &[String], spooled: &[String]) {
    for body in spooled {
        let times = accepted.iter().filter(|a| *a == body).count();
        assert_eq!(
            times, 1,
            "a spooled report was delivered {times} times: {body}"
        );
    }
}

/// The `trigger` of a report body, a test event named by its name (`event:{name}`).
pub fn trigger(body: &str) -> String {
    crate::events::trigger(body)
}

/// Every log line: level and message.
pub struct Lines(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Lines {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        lock(&self.0).push((record.level(), record.args().to_string()));
    }
    fn flush(&self) {}
}

impl Lines {
    /// How many lines there are so far (a mark to look after).
    pub fn mark(&self) -> usize {
        lock(&self.0).len()
    }

    /// Warnings and errors since `mark` that contain `needle`.
    pub fn problems_since(&self, mark: usize, needle: &str) -> Vec<String> {
        lock(&self.0)[mark..]
            .iter()
            .filter(|(level, text)| *level <= log::Level::Warn && text.contains(needle))
            .map(|(_, text)| text.clone())
            .collect()
    }

    /// Every warning and error since `mark`.
    pub fn all_problems_since(&self, mark: usize) -> Vec<String> {
        self.problems_since(mark, "")
    }
}

/// The process's capturing logger, installed on first use.
pub fn log_lines() -> &'static Lines {
    static LINES: OnceLock<&'static Lines> = OnceLock::new();
    LINES.get_or_init(|| {
        let lines: &'static Lines = Box::leak(Box::new(Lines(Mutex::new(Vec::new()))));
        let _ = log::set_logger(lines);
        log::set_max_level(log::LevelFilter::Info);
        lines
    })
}

/// A reporter of `app` with the library's defaults (timeouts, retries, shutdown bound,
/// spool caps), telemetry enabled by its flag, sending to `url`, on a fake `clock`.
pub fn defaults_reporter(
    app: &'static str,
    url: &str,
    clock: &Arc<telemetry_core::reporter::FakeClock>,
    state: &Path,
) -> telemetry_core::reporter::ReporterBuilder {
    telemetry_core::reporter::Reporter::builder(telemetry_core::Application::new(app, "1.0.0"))
        .disclosure(
            telemetry_core::disclosure::Disclosure::new(
                app,
                "Test Ltd",
                "setting NO=1",
                "https://example.invalid",
            )
            .to_stderr(false),
        )
        .consent(
            telemetry_core::consent::ConsentBuilder::new()
                .environment(|_| None)
                .flag("--telemetry", Some("enable")),
        )
        .endpoint(telemetry_core::reporter::HttpConfig::new(url))
        .clock(clock.clone())
        .state_dir(state)
}
