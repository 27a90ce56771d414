//! The test support products use: `testing::MemorySink` and `testing::Receiver`.

mod support;

use std::time::Duration;
use telemetry_core::consent::{Consent, ConsentBuilder};
use telemetry_core::reporter::{HttpConfig, Reporter};
use telemetry_core::testing::{MemorySink, Receiver};
use telemetry_core::{Application, Report};

#[test]
fn the_receiver_keeps_each_report_once_and_announces_the_latest_version() {
    let receiver = Receiver::start().unwrap().with_latest_version("9.9.9");
    let sink = MemorySink::new();
    let reporter = Reporter::builder(Application::new("support-app", "1.0.0"))
        .consent(
            ConsentBuilder::new()
                .default_consent(Consent::Enabled)
                .environment(|_| None),
        )
        .endpoint(HttpConfig::new(receiver.url()))
        .sink(sink.clone())
        .start()
        .unwrap();
    assert!(
        reporter.shutdown(),
        "the final report is sent within the bound"
    );
    assert!(receiver.wait_for_reports(1, Duration::from_secs(10)));
    let reports = receiver.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["application"]["name"], "support-app");
    let request = &receiver.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/report")
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    // The local sink got the same report.
    let local = sink.reports();
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].report_id.to_string(), reports[0]["report_id"]);

    // The same body again (a spooled report resent) is a duplicate, not a second report;
    // the answer carries the version notice.
    let answer = support::request(
        receiver.addr(),
        "POST",
        "/v1/report",
        &[("content-type", "application/json")],
        &request.body,
    );
    assert_eq!(answer.status, 200);
    let notice: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(notice["latest_version"], "9.9.9");
    assert_eq!(receiver.reports().len(), 1);
    assert_eq!(receiver.duplicates(), 1);
    assert_eq!(receiver.requests().len(), 2);
    // Not a report: recorded as a request only.
    support::request(receiver.addr(), "POST", "/v1/report", &[], b"not json");
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(receiver.reports().len(), 1);
}

#[test]
fn the_memory_sink_keeps_reports_in_order_and_clears() {
    let sink = MemorySink::new();
    let app = Application::new("sink-app", "1.0.0");
    let (a, b) = (Report::collect(app.clone()), Report::collect(app));
    telemetry_core::Sink::send(&sink, &a).unwrap();
    telemetry_core::Sink::send(&sink.clone(), &b).unwrap();
    let ids: Vec<_> = sink.reports().iter().map(|r| r.report_id).collect();
    assert_eq!(ids, [a.report_id, b.report_id]);
    sink.clear();
    assert!(sink.reports().is_empty());
}

#[test]
fn a_receiver_that_is_dropped_stops_listening() {
    let receiver = Receiver::start().unwrap();
    let addr = receiver.addr();
    drop(receiver);
    // The server's accepting thread lets go of the socket just after the drop returns.
    let closed = (0..100).any(|_| {
        let refused =
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err();
        if !refused {
            std::thread::sleep(Duration::from_millis(20));
        }
        refused
    });
    assert!(closed, "still listening on {addr} 2 s after the drop");
}
