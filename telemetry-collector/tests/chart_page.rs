//! The chart page, as a person sees it: headless Chromium (Debian's `chromium`) takes a
//! screenshot of `/`, and the screenshot must show the bars of each product version in its
//! colour, and no bars of a version that sent nothing. A missing Chromium fails the test
//! (`scripts/install-collector-tools.sh` installs it).

mod common;

use common::{Fake, Running, backends, get, send};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use telemetry_collector::charts::PALETTE;

fn chromium() -> PathBuf {
    let found = std::env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| {
        ["chromium", "chromium-browser"].iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
    });
    found.expect("chromium is missing: install it with scripts/install-collector-tools.sh")
}

/// A screenshot of `url`, `width` x `height`, taken by headless Chromium into `out`.
fn screenshot(url: &str, out: &Path, width: u32, height: u32) {
    let profile = out.with_extension("profile");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium took more than 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    assert!(out.exists(), "chromium wrote no screenshot");
}

/// How many pixels of `png` have exactly the colour `rgb`.
fn pixels_of(png: &Path, rgb: (u8, u8, u8)) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    buffer[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| (p[0], p[1], p[2]) == rgb)
        .count()
}

#[test]
fn the_page_shows_one_series_per_product_version_in_its_colour() {
    let (_, storage) = backends("page").remove(0);
    let running = Running::start(common::config(), storage);
    let base = running.url.clone();
    common::register(&base, &["1.0.0", "2.0.0", "3.0.0"]);
    // Version 1.0.0: three installations search, one of them exports. Version 2.0.0: one
    // installation searches. Version 3.0.0 sends nothing.
    for features in [
        &[("suite.search.calls", 2), ("suite.export.calls", 1)][..],
        &[("suite.search.calls", 1)],
        &[("suite.search.calls", 9)],
    ] {
        assert_eq!(
            send(
                &base,
                &common::report(&Fake {
                    features,
                    ..Fake::default()
                })
            )
            .status,
            200
        );
    }
    let newer = Fake {
        version: "2.0.0",
        features: &[("suite.search.calls", 4)],
        durations: &[1_000, 2_000],
        ..Fake::default()
    };
    assert_eq!(send(&base, &common::report(&newer)).status, 200);

    let page = get(&format!("{base}/")).body;
    for text in [
        "\nsuite.search.calls\n",
        "\nsuite.export.calls\n",
        "\n1.0.0\n",
        "\n2.0.0\n",
        "100 % (3/3)",
        "33 % (1/3)",
        "100 % (1/1)",
        "0 % (0/1)",
    ] {
        assert!(page.contains(text), "the page lacks {text:?}");
    }
    assert!(
        !page.contains("\n3.0.0\n"),
        "a version that sent nothing has no series"
    );
    assert!(
        page.contains("<td>suite.search.duration</td><td>nanoseconds</td><td>2.0.0</td>"),
        "the merged histogram is listed"
    );

    let dir =
        std::env::temp_dir().join(format!("collector-page-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join("page.png");
    screenshot(&format!("{base}/"), &shot, 1000, 600);
    let first = pixels_of(&shot, PALETTE[0]);
    let second = pixels_of(&shot, PALETTE[1]);
    let third = pixels_of(&shot, PALETTE[2]);
    // Bars are 12 px high and up to 480 px long: 1.0.0 has a full bar (search) and a third
    // of one (export) plus its legend; 2.0.0 a full bar (search), a 1 px one and its legend.
    assert!(
        first > 480 * 12,
        "the 1.0.0 series is not on the screenshot ({first} px)"
    );
    assert!(
        second > 480 * 10,
        "the 2.0.0 series is not on the screenshot ({second} px)"
    );
    assert!(
        first > second,
        "1.0.0 has more bar length than 2.0.0 ({first} against {second} px)"
    );
    assert_eq!(third, 0, "no third series is drawn");
    if let Some(keep) = std::env::var_os("COLLECTOR_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
