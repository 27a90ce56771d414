//! Declaring metrics and registering series: the name and label rules, conflicts between
//! declarations of one name, the cap on series and the overflow counter.

use super::{
    Deferred, GaugeCallback, Metric, RegistryError, Request, SeriesRequest, State, Storage,
};
use crate::engine::labels::{MAX_LABELS, OTHER_LABEL_VALUE, OVERFLOW_LABEL_VALUE};
use crate::engine::metadata::{
    Descriptor, LabelDescriptor, Location, MetricKind, Unit, validate_name,
};
use crate::engine::snapshot::Labels;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The most overflowing label sets a metric remembers (8 bytes each). Past it, each new
/// registration of an overflowing label set is counted, so `telemetry.series_overflow` is an
/// upper bound of the distinct label sets.
const OVERFLOW_MEMORY: usize = 65_536;

impl State {
    /// Creates the metric of `request`, or checks that the existing one agrees with it.
    pub(super) fn declare(
        &mut self,
        request: &Request<'_>,
        series: &SeriesRequest,
        callback: bool,
    ) -> Result<(), RegistryError> {
        validate_name(request.name).map_err(RegistryError::InvalidName)?;
        validate_label_names(request)?;
        let Some(metric) = self.metrics.get_mut(request.name) else {
            let mut descriptor = Descriptor {
                name: request.name.to_owned(),
                kind: request.kind,
                unit: request.unit,
                description: request.description.to_owned(),
                declared_at: vec![request.location.clone()],
                labels: request
                    .labels
                    .iter()
                    .map(|name| LabelDescriptor {
                        name: (*name).to_owned(),
                        values: None,
                        vouched: None,
                    })
                    .collect(),
                max_series: (!request.labels.is_empty()).then_some(request.max_series),
                sample_one_in: request.sample_one_in,
            };
            note_possible_values(&mut descriptor, series);
            self.metrics.insert(
                Arc::from(request.name),
                Metric {
                    description: Arc::from(descriptor.description.as_str()),
                    descriptor,
                    bounded_series: 0,
                    overflowed: rustc_hash::FxHashSet::default(),
                    has_callback: callback,
                    series: BTreeMap::new(),
                },
            );
            return Ok(());
        };
        let existing = &metric.descriptor;
        if existing.kind != request.kind {
            return Err(RegistryError::KindConflict {
                name: request.name.to_owned(),
                existing: existing.kind,
                requested: request.kind,
                existing_at: existing.declared_at[0].clone(),
            });
        }
        if existing.unit != request.unit {
            return Err(RegistryError::UnitConflict {
                name: request.name.to_owned(),
                existing: existing.unit,
                requested: request.unit,
                existing_at: existing.declared_at[0].clone(),
            });
        }
        if !existing
            .labels
            .iter()
            .map(|l| l.name.as_str())
            .eq(request.labels.iter().copied())
        {
            return Err(RegistryError::LabelConflict {
                name: request.name.to_owned(),
                existing: existing.labels.iter().map(|l| l.name.clone()).collect(),
                requested: request.labels.iter().map(|l| (*l).to_owned()).collect(),
            });
        }
        // A callback gauge has one source of values: only a declared one's first registration.
        let declared_callback = callback && metric.has_callback && metric.series.is_empty();
        if (callback || metric.has_callback) && !declared_callback {
            return Err(RegistryError::DuplicateCallback {
                name: request.name.to_owned(),
            });
        }
        let descriptor = &mut metric.descriptor;
        if descriptor.description.is_empty() && !request.description.is_empty() {
            descriptor.description = request.description.to_owned();
            metric.description = Arc::from(request.description);
        }
        // Sites that sample differently may share a histogram (each records unbiased
        // estimates); the manifest shows the sparsest sampling.
        descriptor.sample_one_in = descriptor.sample_one_in.max(request.sample_one_in);
        if !descriptor.declared_at.contains(&request.location) {
            descriptor.declared_at.push(request.location.clone());
        }
        note_possible_values(descriptor, series);
        Ok(())
    }

    /// Lists a plain-API declaration: a labeled metric or callback gauge is declared (its
    /// series come when recorded or registered), any other gets its one series now, so a
    /// snapshot shows it as zero before it is first recorded.
    /// Registers one series (the only one of an unlabeled metric), or finds it.
    pub(super) fn register(
        &mut self,
        request: &Request<'_>,
        series: SeriesRequest,
        callback: Option<GaugeCallback>,
    ) -> Result<Storage, RegistryError> {
        self.declare(request, &series, callback.is_some())?;
        if series.values.len() != request.labels.len() {
            return Err(RegistryError::InvalidLabel {
                name: request.name.to_owned(),
                reason: format!(
                    "{} label values for the label names {:?}",
                    series.values.len(),
                    request.labels
                ),
            });
        }
        // A text outside its type's listed values (a hand-written `label_text` that returns
        // something made at run time) is recorded as `other`.
        let labels: Labels = request
            .labels
            .iter()
            .zip(&series.values)
            .enumerate()
            .map(|(i, (name, value))| {
                let listed = series.possible.get(i).copied().flatten();
                let value = match listed {
                    Some(list) if !list.contains(&value.as_ref()) => OTHER_LABEL_VALUE,
                    _ => value.as_ref(),
                };
                ((*name).to_owned(), value.to_owned())
            })
            .collect();
        if let Some(storage) = self.metrics[request.name].series.get(&labels) {
            return Ok(storage.clone());
        }
        let metric = &self.metrics[request.name];
        let labels = if !labels.is_empty() && metric.bounded_series >= request.max_series {
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut hasher = rustc_hash::FxHasher::default();
                labels.hash(&mut hasher);
                hasher.finish()
            };
            let Some(metric) = self.metrics.get_mut(request.name) else {
                unreachable!("declared above");
            };
            let first_time =
                metric.overflowed.len() >= OVERFLOW_MEMORY || metric.overflowed.insert(hash);
            if first_time {
                self.count_overflow(request.name);
            }
            let overflow: Labels = request
                .labels
                .iter()
                .map(|name| ((*name).to_owned(), OVERFLOW_LABEL_VALUE.to_owned()))
                .collect();
            if let Some(storage) = self.metrics[request.name].series.get(&overflow) {
                return Ok(storage.clone());
            }
            overflow
        } else {
            labels
        };
        let is_overflow = labels
            .values()
            .next()
            .is_some_and(|v| v == OVERFLOW_LABEL_VALUE);
        let storage = match callback {
            Some(callback) => Storage::CallbackGauge(callback),
            None => self.slots.new_storage(request.kind),
        };
        let Some(metric) = self.metrics.get_mut(request.name) else {
            unreachable!("inserted above");
        };
        if !is_overflow {
            metric.bounded_series += 1;
        }
        metric.series.insert(labels, storage.clone());
        Ok(storage)
    }

    /// Counts a label set that did not fit under its metric's cap, in
    /// `telemetry.series_overflow{metric="..."}` (a family without a cap: it has at most one
    /// series per metric).
    fn count_overflow(&mut self, metric: &str) {
        let series = SeriesRequest {
            values: vec![metric.to_owned().into()],
            possible: vec![None],
            reasons: Vec::new(),
        };
        if let Ok(Storage::Counter(core)) = self.register(&overflow_request(), series, None) {
            core.retired.fetch_add(1, Relaxed);
        }
    }

    /// Registers a call site, and caches its storage in it. A site whose name conflicts with
    /// another metric keeps its values under `{name}.conflicting_{kind}` and the conflict is
    /// logged: a macro cannot return an error, and dropping its values would lose data.
    pub(super) fn register_or_keep_apart(
        &mut self,
        request: &Request<'_>,
        series: SeriesRequest,
        deferred: &mut Deferred,
    ) -> Storage {
        let values = series.values.clone();
        match self.register(request, series, None) {
            Ok(storage) => storage,
            Err(error) => {
                let fallback = format!("{}.conflicting_{}", request.name, request.kind);
                deferred.push(format!(
                    "{error}; values of the call site at {} are kept under `{fallback}`",
                    request.location
                ));
                let renamed = Request {
                    name: &fallback,
                    location: request.location.clone(),
                    ..*request
                };
                let series = SeriesRequest {
                    possible: vec![None; values.len()],
                    reasons: Vec::new(),
                    values,
                };
                self.register(&renamed, series, None)
                    .unwrap_or_else(|_| self.slots.new_storage(request.kind))
            }
        }
    }
}

/// The counter of label sets that did not fit under their metric's cap.
const SERIES_OVERFLOW: &str = "telemetry.series_overflow";

/// `telemetry.series_overflow{metric}`: declared when the call sites load, so the manifest
/// lists it whether or not any metric has overflowed.
pub(super) fn overflow_request() -> Request<'static> {
    Request {
        name: SERIES_OVERFLOW,
        kind: MetricKind::Counter,
        unit: Unit::None,
        description: "Label sets recorded into a metric's overflow series because it reached its cap on series",
        location: Location {
            module_path: module_path!().to_owned(),
            file: file!().to_owned(),
            line: line!(),
        },
        labels: &["metric"],
        max_series: usize::MAX,
        sample_one_in: None,
    }
}

fn validate_label_names(request: &Request<'_>) -> Result<(), RegistryError> {
    let fail = |reason: String| {
        Err(RegistryError::InvalidLabel {
            name: request.name.to_owned(),
            reason,
        })
    };
    if request.labels.len() > MAX_LABELS {
        return fail(format!(
            "{} labels; at most {MAX_LABELS} are allowed",
            request.labels.len()
        ));
    }
    for (i, label) in request.labels.iter().enumerate() {
        if let Err(rule) = telemetry_rules::label_name(label) {
            return fail(format!("label name `{label}`: {rule}"));
        }
        if request.labels[..i].contains(label) {
            return fail(format!("label name `{label}` is given twice"));
        }
    }
    Ok(())
}

/// Records, for the manifest, each label's closed set of values and the reason a hand-written
/// label type gives, once known.
fn note_possible_values(descriptor: &mut Descriptor, series: &SeriesRequest) {
    for (label, possible) in descriptor.labels.iter_mut().zip(&series.possible) {
        if let (None, Some(values)) = (&label.values, possible) {
            label.values = Some(values.iter().map(|v| (*v).to_owned()).collect());
        }
    }
    for (label, reason) in descriptor.labels.iter_mut().zip(&series.reasons) {
        if label.vouched.is_none() {
            label.vouched = crate::engine::metadata::hand_written(reason);
        }
    }
}
