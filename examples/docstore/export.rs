//! Exporting a collection for download: JSON lines or CSV.

use crate::collection::{Collection, Document};
use serde_json::Value;
use std::io::Write;
use telemetry_core::{count_usage, timed};

/// An export format.
pub trait Exporter {
    /// Writes every document of the collection to `out`.
    fn export(
        &self,
        docs: &mut dyn Iterator<Item = &Document>,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error>;
}

/// One JSON object per line, with the key added as `_key`.
pub struct JsonLines;

/// A flat CSV of the scalar fields.
pub struct Csv;

// Both `export` methods live in this module, so derived names would be the same metric:
// each is named explicitly.
impl Exporter for JsonLines {
    #[count_usage(
        name = "docstore.export.jsonl",
        description = "Collections exported as JSON lines"
    )]
    fn export(
        &self,
        docs: &mut dyn Iterator<Item = &Document>,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        for doc in docs {
            let mut record = doc.body.clone();
            if let Value::Object(fields) = &mut record {
                fields.insert("_key".into(), Value::String(doc.key.clone()));
            }
            serde_json::to_writer(&mut *out, &record)?;
            out.push(b'\n');
        }
        Ok(())
    }
}

impl Exporter for Csv {
    #[count_usage(
        name = "docstore.export.csv",
        description = "Collections exported as CSV"
    )]
    fn export(
        &self,
        docs: &mut dyn Iterator<Item = &Document>,
        out: &mut Vec<u8>,
    ) -> Result<(), serde_json::Error> {
        out.extend_from_slice(b"key,title,author,year,rating\n");
        for doc in docs {
            let field = |name: &str| match doc.body.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            // Writing to a Vec cannot fail.
            let _ = writeln!(
                out,
                "{},{},{},{},{}",
                csv_escape(&doc.key),
                csv_escape(&field("title")),
                csv_escape(&field("author")),
                field("year"),
                field("rating"),
            );
        }
        Ok(())
    }
}

fn csv_escape(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Exports `collection` with `exporter`, returning the file's bytes.
#[timed(
    name = "docstore.export.duration",
    description = "Time to export one collection, any format"
)]
pub fn export_collection<E: Exporter>(
    exporter: &E,
    collection: &Collection,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(collection.len() * 256);
    exporter.export(&mut collection.documents(), &mut out)?;
    Ok(out)
}
