//! [`Receiver`] (feature `test-receiver`): a collector on loopback for a product's tests. It
//! records every request, keeps each report once by its `report_id` (a spooled report sent
//! again is counted as a duplicate), and answers as a collector does, with the latest version
//! if one is set (FerretDB's version notice, `{"latest_version": "..."}`).
//!
//! ```
//! use std::time::Duration;
//! use telemetry_core::reporter::{HttpConfig, Reporter};
//! use telemetry_core::testing::Receiver;
//! use telemetry_core::{Application, consent::{Consent, ConsentBuilder}};
//!
//! let receiver = Receiver::start()?.with_latest_version("2.0.0");
//! let reporter = Reporter::builder(Application::new("my-app", "1.0.0"))
//!     .consent(ConsentBuilder::new().default_consent(Consent::Enabled).environment(|_| None))
//!     .endpoint(HttpConfig::new(receiver.url()))
//!     .start()?;
//! reporter.shutdown(); // the final report is sent at shutdown
//! assert!(receiver.wait_for_reports(1, Duration::from_secs(10)));
//! assert_eq!(receiver.reports()[0]["application"]["name"], "my-app");
//! assert_eq!(receiver.duplicates(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The most bytes of a request body the receiver reads (the reporter's own cap is 256 KiB).
const MAX_BODY: u64 = 4 << 20;

/// One request the receiver got.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path and query, as sent.
    pub path: String,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (at most 4 MiB of it).
    pub body: Vec<u8>,
}

#[derive(Default)]
struct Seen {
    requests: Vec<ReceivedRequest>,
    /// Distinct reports, by arrival.
    reports: Vec<serde_json::Value>,
    ids: HashSet<String>,
    duplicates: usize,
}

struct Shared {
    seen: Mutex<Seen>,
    arrived: Condvar,
    latest_version: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// A collector on `127.0.0.1` (an ephemeral port), answering on a thread of its own until it
/// is dropped.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Starts a receiver on loopback.
    ///
    /// # Errors
    /// The I/O error if no loopback port can be bound.
    pub fn start() -> io::Result<Receiver> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("the receiver has no IP address"))?;
        let server = Arc::new(server);
        let shared = Arc::new(Shared {
            seen: Mutex::new(Seen::default()),
            arrived: Condvar::new(),
            latest_version: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let thread = {
            let (server, shared) = (server.clone(), shared.clone());
            std::thread::Builder::new()
                .name("telemetry-test-receiver".to_owned())
                .spawn(move || serve(&server, &shared))?
        };
        Ok(Receiver {
            addr,
            shared,
            server,
            thread: Some(thread),
        })
    }

    /// Answers every report with `{"latest_version": version}`, as a collector announcing a
    /// newer release does.
    pub fn with_latest_version(self, version: &str) -> Self {
        *self
            .shared
            .latest_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(version.to_owned());
        self
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to give the reporter: `http://127.0.0.1:{port}/v1/report`.
    pub fn url(&self) -> String {
        format!("http://{}/v1/report", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.seen().requests.clone()
    }

    /// Every distinct report so far (by `report_id`), parsed, in arrival order. Bodies that
    /// are not JSON objects with a `report_id` are in [`requests`](Self::requests) only.
    pub fn reports(&self) -> Vec<serde_json::Value> {
        self.seen().reports.clone()
    }

    /// How many reports arrived again with a `report_id` seen before.
    pub fn duplicates(&self) -> usize {
        self.seen().duplicates
    }

    /// Waits until at least `count` distinct reports have arrived, at most `timeout`; false
    /// if they did not.
    pub fn wait_for_reports(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen();
        while seen.reports.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = self
                .shared
                .arrived
                .wait_timeout(seen, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let mut request = match server.recv() {
            Ok(request) => request,
            Err(_) => return,
        };
        let mut body = Vec::new();
        let _ = request.as_reader().take(MAX_BODY).read_to_end(&mut body);
        let received = ReceivedRequest {
            method: request.method().as_str().to_owned(),
            path: request.url().to_owned(),
            content_type: request
                .headers()
                .iter()
                .find(|h| h.field.equiv("content-type"))
                .map(|h| h.value.as_str().to_owned()),
            body,
        };
        {
            let mut seen = shared.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if let Ok(report) = serde_json::from_slice::<serde_json::Value>(&received.body)
                && let Some(id) = report.get("report_id").and_then(|id| id.as_str())
            {
                if seen.ids.insert(id.to_owned()) {
                    seen.reports.push(report);
                } else {
                    seen.duplicates += 1;
                }
            }
            seen.requests.push(received);
        }
        shared.arrived.notify_all();
        let answer = match &*shared
            .latest_version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some(version) => serde_json::json!({ "latest_version": version }).to_string(),
            None => "{}".to_owned(),
        };
        let mut response = tiny_http::Response::from_string(answer);
        if let Ok(header) = tiny_http::Header::from_bytes("content-type", "application/json") {
            response = response.with_header(header);
        }
        let _ = request.respond(response);
    }
}
