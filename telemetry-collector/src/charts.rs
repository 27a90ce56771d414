//! The page at `/`: for each product, a server-rendered SVG chart (drawn with plotters' SVG
//! backend) of the share of installations that used each feature in the latest period, one
//! bar per product version, and a table of the merged histograms' quantiles.

use crate::rollup::Rollup;
use plotters::prelude::*;
use std::fmt::Write;

/// The colours of the product versions' bars, in version order (then again from the start).
pub const PALETTE: [(u8, u8, u8); 6] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
];

const WIDTH: u32 = 960;
const LABEL_WIDTH: i32 = 360;
const BAR_WIDTH: i32 = 480;
const BAR_HEIGHT: i32 = 14;

/// Text safe in HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG chart of `rollup`'s latest period: one row per feature, one bar per version, the
/// bar's length the share of that version's installations (0 to 100 %).
pub fn feature_chart(rollup: &Rollup) -> String {
    let period = rollup.latest_period().unwrap_or("").to_owned();
    let shares = rollup.shares_by_version(&period);
    let mut versions: Vec<String> = rollup
        .installations
        .iter()
        .filter(|c| c.period == period)
        .map(|c| c.version.clone())
        .collect();
    versions.sort();
    versions.dedup();
    let mut totals: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for c in rollup.installations.iter().filter(|c| c.period == period) {
        *totals.entry(c.version.as_str()).or_default() += c.installations;
    }
    let row = 10 + BAR_HEIGHT * versions.len().max(1) as i32;
    let height = (70 + row * shares.len().max(1) as i32) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let title = format!(
            "{}: share of installations using each feature, {} of {}",
            rollup.product,
            match rollup.period {
                crate::storage::Period::Day => "day",
                crate::storage::Period::Week => "week",
            },
            if period.is_empty() { "-" } else { &period }
        );
        let _ = root.draw(&Text::new(title, (10, 18), ("sans-serif", 16).into_font()));
        let mut x = 10;
        for (i, version) in versions.iter().enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let _ = root.draw(&Rectangle::new(
                [(x, 32), (x + 14, 46)],
                RGBColor(r, g, b).filled(),
            ));
            let _ = root.draw(&Text::new(
                version.clone(),
                (x + 18, 44),
                ("sans-serif", 13).into_font(),
            ));
            x += 30 + 8 * version.len() as i32;
        }
        let top = 60;
        for (n, (feature, by_version)) in shares.iter().enumerate() {
            let y = top + row * n as i32;
            let _ = root.draw(&Text::new(
                feature.clone(),
                (10, y + 12),
                ("sans-serif", 12).into_font(),
            ));
            for (i, version) in versions.iter().enumerate() {
                let of_version = totals.get(version.as_str()).copied().unwrap_or(0);
                let (used, of) = by_version.get(version).copied().unwrap_or((0, of_version));
                let share = if of == 0 {
                    0.0
                } else {
                    used as f64 / of as f64
                };
                let (r, g, b) = PALETTE[i % PALETTE.len()];
                let y0 = y + BAR_HEIGHT * i as i32;
                let length = (share * f64::from(BAR_WIDTH)).round() as i32;
                let _ = root.draw(&Rectangle::new(
                    [
                        (LABEL_WIDTH, y0 + 1),
                        (LABEL_WIDTH + length.max(1), y0 + BAR_HEIGHT - 1),
                    ],
                    RGBColor(r, g, b).filled(),
                ));
                let _ = root.draw(&Text::new(
                    format!("{:.0} % ({used}/{of})", share * 100.0),
                    (LABEL_WIDTH + length + 6, y0 + BAR_HEIGHT - 3),
                    ("sans-serif", 11).into_font(),
                ));
            }
        }
        let _ = root.present();
    }
    svg
}

/// The whole page: each product's chart and histogram table.
pub fn page(rollups: &[Rollup]) -> String {
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Telemetry collector</title>\
         <style>body{font-family:sans-serif;margin:16px}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:first-child{text-align:left}</style>\
         </head><body>\n<h1>Telemetry collector</h1>\n",
    );
    if rollups.is_empty() {
        html.push_str("<p>No manifest is registered yet.</p>\n");
    }
    for rollup in rollups {
        let _ = writeln!(
            html,
            "<section id=\"{0}\"><h2>{0}</h2>",
            escape(&rollup.product)
        );
        html.push_str("<figure class=\"features\">");
        html.push_str(&feature_chart(rollup));
        html.push_str("</figure>\n");
        let period = rollup.latest_period().unwrap_or("");
        let _ = writeln!(
            html,
            "<table class=\"histograms\"><caption>Histograms merged over every installation ({}; quantiles within &plusmn;{:.2} %)</caption>\
             <tr><th>metric</th><th>unit</th><th>version</th><th>reports</th><th>values</th><th>p50</th><th>p90</th><th>p99</th></tr>",
            escape(period),
            telemetry_core::HistogramSnapshot::RELATIVE_ERROR * 100.0
        );
        for h in rollup.histograms.iter().filter(|h| h.period == period) {
            let q = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&h.metric),
                escape(&h.unit),
                escape(&h.version),
                h.reports,
                h.count,
                q(h.p50),
                q(h.p90),
                q(h.p99)
            );
        }
        html.push_str("</table></section>\n");
    }
    html.push_str("</body></html>\n");
    html
}
