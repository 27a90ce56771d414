//! The OTLP/HTTP exporter against a loopback receiver, with what was sent decoded by an
//! independent implementation: the generated classes of the Python `opentelemetry-proto`
//! package (protobuf's own runtime), checking names, values, bucket counts and attributes.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;
use support::TempDir;
/// Text label values written in the source, as the attributes' string literals are.
use telemetry_core::__private::LiteralLabel;
use telemetry_core::export::otlp::{Encoding, OtlpError, OtlpExporter};
use telemetry_core::testing::capture;
use telemetry_core::{Application, Snapshot};

const PYTHON_MODULE: &str = "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2";

/// Decodes OTLP requests with the Python classes and prints a JSON summary of them.
/// `decode FILE` (protobuf), `decode-json FILE` (OTLP/JSON), `compare PB_FILE JSON_FILE`.
const DECODER: &str = r#"
import json, sys
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

def any_value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None

def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}

def summarize(req):
    out = []
    for rm in req.resource_metrics:
        res = {"attributes": attrs(rm.resource.attributes), "scopes": []}
        for sm in rm.scope_metrics:
            scope = {"name": sm.scope.name, "version": sm.scope.version, "metrics": []}
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                d = getattr(m, kind)
                metric = {"name": m.name, "unit": m.unit, "description": m.description,
                          "kind": kind, "points": []}
                if kind == "sum":
                    metric["is_monotonic"] = d.is_monotonic
                if kind in ("sum", "histogram"):
                    metric["temporality"] = d.aggregation_temporality
                for p in d.data_points:
                    point = {"attributes": attrs(p.attributes),
                             "start": p.start_time_unix_nano, "time": p.time_unix_nano}
                    if kind == "histogram":
                        point.update(count=p.count, sum=p.sum,
                                     bucket_counts=list(p.bucket_counts),
                                     explicit_bounds=list(p.explicit_bounds),
                                     min=p.min if p.HasField("min") else None,
                                     max=p.max if p.HasField("max") else None)
                    else:
                        which = p.WhichOneof("value")
                        point["value_kind"] = which
                        point["value"] = getattr(p, which)
                    metric["points"].append(point)
                scope["metrics"].append(metric)
            res["scopes"].append(scope)
        out.append(res)
    return out

mode = sys.argv[1]
if mode == "decode":
    req = ExportMetricsServiceRequest()
    req.ParseFromString(open(sys.argv[2], "rb").read())
    print(json.dumps(summarize(req)))
elif mode == "decode-json":
    req = json_format.Parse(open(sys.argv[2]).read(), ExportMetricsServiceRequest())
    print(json.dumps(summarize(req)))
elif mode == "compare":
    pb = ExportMetricsServiceRequest()
    pb.ParseFromString(open(sys.argv[2], "rb").read())
    js = json_format.Parse(open(sys.argv[3]).read(), ExportMetricsServiceRequest())
    print(json.dumps({"equal": pb == js, "summary": summarize(pb)}))
"#;

/// Runs the decoder; the JSON it prints.
fn python(python: &Path, dir: &TempDir, args: &[&str]) -> Value {
    let script = dir.path().join("decode.py");
    std::fs::write(&script, DECODER).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "the Python decoder failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the decoder")
}

/// One request as the receiver saw it.
struct Received {
    request_line: String,
    content_type: String,
    body: Vec<u8>,
}

/// A loopback receiver that reads one HTTP request, answers `status` with `body` and
/// `content_type`, and hands the request over. Its thread ends after one request or 30 s.
fn receiver(
    status: u16,
    content_type: &str,
    body: Vec<u8>,
) -> (SocketAddr, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let content_type = content_type.to_owned();
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + support::WAIT;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(_) => return,
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0;
        let mut request_type = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "content-type" => request_type = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut request_body = vec![0; length];
        reader.read_exact(&mut request_body).unwrap();
        let mut stream = reader.into_inner();
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let _ = tx.send(Received {
            request_line: request_line.trim_end().to_owned(),
            content_type: request_type,
            body: request_body,
        });
    });
    (addr, rx)
}

const LATENCIES: [u64; 5] = [1_500, 20_000, 20_000, 300_000, 4_000_000_000];
const SIZES: [u64; 4] = [0, 10, 100, 1_000];

/// A known workload, only its metrics (a capture lists every registered metric).
fn workload() -> Snapshot {
    let requests = telemetry_core::counter!("otlp::it.requests").unwrap();
    let errors = telemetry_core::counter!("otlp.it.errors", labels(code: LiteralLabel)).unwrap();
    let queue = telemetry_core::gauge!("otlp.it.queue", description = "Jobs waiting").unwrap();
    let memory = telemetry_core::gauge!("otlp.it.memory", unit = Bytes).unwrap();
    let latency = telemetry_core::histogram!(
        "otlp.it.latency",
        description = "Handling time",
        unit = Nanoseconds
    )
    .unwrap();
    let sizes = telemetry_core::histogram!("otlp.it.sizes", unit = Bytes).unwrap();
    let snap = capture(|| {
        requests.increment_by(5);
        errors.increment_by((LiteralLabel("timeout"),), 3);
        errors.increment((LiteralLabel("refused"),));
        queue.set(-7);
        memory.set(123_456);
        LATENCIES.iter().for_each(|&v| latency.record(v));
        SIZES.iter().for_each(|&v| sizes.record(v));
    });
    let keep = |name: &str| name.starts_with("otlp");
    Snapshot {
        counters: snap.counters.into_iter().filter(|(n, _)| keep(n)).collect(),
        gauges: snap.gauges.into_iter().filter(|(n, _)| keep(n)).collect(),
        histograms: snap
            .histograms
            .into_iter()
            .filter(|(n, _)| keep(n))
            .collect(),
    }
}

fn metric<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary[0]["scopes"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {summary}"))
}

/// Checks an explicit-bucket histogram point against the recorded values (in their unit,
/// exported divided by `divisor`).
fn check_histogram(point: &Value, values: &[u64], divisor: f64) {
    let bounds: Vec<f64> = serde_json::from_value(point["explicit_bounds"].clone()).unwrap();
    let counts: Vec<u64> = serde_json::from_value(point["bucket_counts"].clone()).unwrap();
    assert_eq!(counts.len(), bounds.len() + 1, "{point}");
    assert_eq!(point["count"], values.len() as u64);
    assert_eq!(counts.iter().sum::<u64>(), values.len() as u64);
    let sum: u64 = values.iter().sum();
    assert_eq!(point["sum"].as_f64().unwrap(), sum as f64 / divisor);
    let min = *values.iter().min().unwrap() as f64 / divisor;
    let max = *values.iter().max().unwrap() as f64 / divisor;
    assert_eq!(point["min"].as_f64(), Some(min));
    assert_eq!(point["max"].as_f64(), Some(max));
    assert!(bounds.windows(2).all(|w| w[0] < w[1]), "{bounds:?}");
    // OTLP: bucket i counts bounds[i-1] < v <= bounds[i]; exact for every bound.
    let mut below = 0;
    for (i, &b) in bounds.iter().enumerate() {
        below += counts[i];
        let exact = values.iter().filter(|&&v| v as f64 / divisor <= b).count() as u64;
        assert_eq!(below, exact, "bound {b}: {point}");
    }
}

#[test]
fn protobuf_export_decodes_with_the_python_implementation() {
    let Some(py) = support::require_python_module(PYTHON_MODULE) else {
        return;
    };
    let dir = TempDir::new("otlp");
    let snap = workload();
    let (addr, received) = receiver(200, "application/x-protobuf", Vec::new());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    OtlpExporter::new(
        &format!("http://{addr}"),
        Application::new("otlp-test", "9.9.9"),
    )
    .unwrap()
    .with_timeout(Duration::from_secs(10))
    .export(&snap)
    .unwrap();
    let got = received
        .recv_timeout(support::WAIT)
        .expect("the receiver got a request");
    assert_eq!(got.request_line, "POST /v1/metrics HTTP/1.1");
    assert_eq!(got.content_type, "application/x-protobuf");
    let file = dir.path().join("request.pb");
    std::fs::write(&file, &got.body).unwrap();
    let summary = python(&py, &dir, &["decode", file.to_str().unwrap()]);

    let resource = &summary[0]["attributes"];
    assert_eq!(resource["service.name"], "otlp-test");
    assert_eq!(resource["service.version"], "9.9.9");
    assert_eq!(
        resource["service.instance.id"],
        telemetry_core::instance_id().to_string()
    );
    assert_eq!(resource["telemetry.sdk.name"], "telemetry-core");
    assert_eq!(resource["telemetry.sdk.language"], "rust");
    if cfg!(target_os = "linux") {
        assert_eq!(resource["os.type"], "linux");
    }
    if cfg!(target_arch = "x86_64") {
        assert_eq!(resource["host.arch"], "amd64");
    }
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(resource["host.cpu.logical_count"], cores);
    assert!(resource.get("host.name").is_none(), "{resource}");
    assert_eq!(summary[0]["scopes"][0]["name"], "telemetry-core");
    let names: Vec<&str> = summary[0]["scopes"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "otlp.it.errors",
            "otlp.it.requests",
            "otlp.it.memory",
            "otlp.it.queue",
            "otlp.it.latency",
            "otlp.it.sizes"
        ]
    );

    let requests = metric(&summary, "otlp.it.requests");
    assert_eq!(requests["kind"], "sum");
    assert_eq!(requests["is_monotonic"], true);
    assert_eq!(requests["temporality"], 2, "cumulative");
    let point = &requests["points"][0];
    assert_eq!(
        (&point["value_kind"], &point["value"]),
        (&"as_int".into(), &5.into())
    );
    let (start, time) = (
        point["start"].as_u64().unwrap(),
        point["time"].as_u64().unwrap(),
    );
    assert!(start < before && before <= time, "{start} {before} {time}");
    let uptime = telemetry_core::uptime().as_nanos() as u64;
    assert!(
        time - start <= uptime + 1_000_000_000,
        "start is the process start"
    );

    let errors = metric(&summary, "otlp.it.errors");
    let by_code: Vec<(String, u64)> = errors["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["attributes"]["code"].as_str().unwrap().to_owned(),
                p["value"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_code,
        [("refused".to_owned(), 1), ("timeout".to_owned(), 3)]
    );

    let queue = metric(&summary, "otlp.it.queue");
    assert_eq!(queue["kind"], "gauge");
    assert_eq!(queue["description"], "Jobs waiting");
    assert_eq!(queue["points"][0]["value"], -7);
    let memory = metric(&summary, "otlp.it.memory");
    assert_eq!(
        (&memory["unit"], &memory["points"][0]["value"]),
        (&"By".into(), &123_456.into())
    );

    let latency = metric(&summary, "otlp.it.latency");
    assert_eq!(latency["kind"], "histogram");
    assert_eq!(latency["unit"], "s");
    assert_eq!(latency["temporality"], 2);
    check_histogram(&latency["points"][0], &LATENCIES, 1e9);
    let sizes = metric(&summary, "otlp.it.sizes");
    assert_eq!(sizes["unit"], "By");
    check_histogram(&sizes["points"][0], &SIZES, 1.0);
    eprintln!(
        "OTLP: {} bytes of protobuf; latency bounds {}, size bounds {}",
        got.body.len(),
        latency["points"][0]["explicit_bounds"]
            .as_array()
            .unwrap()
            .len(),
        sizes["points"][0]["explicit_bounds"]
            .as_array()
            .unwrap()
            .len()
    );
}

#[test]
fn json_export_is_the_same_request_as_protobuf() {
    let Some(py) = support::require_python_module(PYTHON_MODULE) else {
        return;
    };
    let dir = TempDir::new("otlp-json");
    let snap = workload();
    let app = Application::new("otlp-json-test", "1.0.0");
    let protobuf = OtlpExporter::new("http://127.0.0.1:1", app.clone()).unwrap();
    let json = protobuf.clone().with_encoding(Encoding::Json);
    let request = protobuf.request_at(&snap, 1_000, 2_000_000_000_000_000_000);
    let pb_file = dir.path().join("request.pb");
    let json_file = dir.path().join("request.json");
    std::fs::write(&pb_file, protobuf.encode(&request)).unwrap();
    std::fs::write(&json_file, json.encode(&request)).unwrap();
    let compared = python(
        &py,
        &dir,
        &[
            "compare",
            pb_file.to_str().unwrap(),
            json_file.to_str().unwrap(),
        ],
    );
    assert_eq!(compared["equal"], true, "{compared}");
    assert_eq!(
        metric(&compared["summary"], "otlp.it.requests")["points"][0]["time"],
        2_000_000_000_000_000_000u64
    );

    // Over the wire, with its content type.
    let (addr, received) = receiver(200, "application/json", b"{}".to_vec());
    OtlpExporter::new(&format!("http://{addr}/v1/metrics"), app)
        .unwrap()
        .with_encoding(Encoding::Json)
        .export(&snap)
        .unwrap();
    let got = received.recv_timeout(support::WAIT).unwrap();
    assert_eq!(got.request_line, "POST /v1/metrics HTTP/1.1");
    assert_eq!(got.content_type, "application/json");
    std::fs::write(&json_file, &got.body).unwrap();
    let summary = python(&py, &dir, &["decode-json", json_file.to_str().unwrap()]);
    check_histogram(
        &metric(&summary, "otlp.it.latency")["points"][0],
        &LATENCIES,
        1e9,
    );
}

#[test]
fn receiver_refusals_are_clear_errors() {
    let snap = workload();
    let app = Application::new("otlp-errors", "1.0.0");
    let export = |addr: SocketAddr| {
        OtlpExporter::new(&format!("http://{addr}"), app.clone())
            .unwrap()
            .with_timeout(Duration::from_secs(10))
            .export(&snap)
    };

    let (addr, _rx) = receiver(400, "text/plain", b"metric name is invalid".to_vec());
    let err = export(addr).unwrap_err();
    assert_eq!(
        err,
        OtlpError::Status {
            url: format!("http://{addr}/v1/metrics"),
            status: 400,
            body: "metric name is invalid".into(),
        }
    );
    assert!(
        err.to_string()
            .contains("answered 400: metric name is invalid"),
        "{err}"
    );

    // ExportMetricsServiceResponse { partial_success { rejected_data_points: 2, error_message: "bad" } }
    let partial = vec![0x0a, 0x07, 0x08, 0x02, 0x12, 0x03, b'b', b'a', b'd'];
    let (addr, _rx) = receiver(200, "application/x-protobuf", partial);
    assert_eq!(
        export(addr).unwrap_err(),
        OtlpError::PartialSuccess {
            rejected_data_points: 2,
            message: "bad".into()
        }
    );
    let partial = br#"{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"worse"}}"#;
    let (addr, _rx) = receiver(200, "application/json", partial.to_vec());
    assert_eq!(
        export(addr).unwrap_err(),
        OtlpError::PartialSuccess {
            rejected_data_points: 3,
            message: "worse".into()
        }
    );

    let closed: SocketAddr = format!("127.0.0.1:{}", support::free_port())
        .parse()
        .unwrap();
    let err = export(closed).unwrap_err();
    assert!(matches!(err, OtlpError::Transport { .. }), "{err}");
}
