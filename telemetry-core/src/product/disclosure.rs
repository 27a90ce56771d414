//! The start-up disclosure: who collects, that it is anonymous, how to opt out, where to read
//! more; and a different text when opted out (EventStoreDB's "Usage telemetry" documentation).
//!
//! ```text
//! Telemetry
//! ---------
//! DocStore collects anonymous usage data in order to improve your experience. The data is collected by Example Ltd.
//! You can opt out of sending telemetry by setting the DOCSTORE_TELEMETRY_OPTOUT environment variable to true.
//! For more information visit https://example.com/telemetry
//! ```
//!
//! The reporter shows it (logs it, and prints it to stderr where configured) before anything
//! else, and never sends a report before it has been shown.

use crate::product::consent::{Consent, ConsentDecision};
use std::time::Duration;

/// The wording of a product's disclosure. [`Disclosure::text`] fills the default template;
/// [`Disclosure::with_texts`] replaces it.
///
/// It can also be read from a configuration file (`Deserialize`): `product`, `collector`,
/// `how_to_opt_out` and `link` are required; `custom_enabled`, `custom_disabled` and
/// `to_stderr` are optional; the undecided delay and period are the reporter's to set, and
/// unknown fields are refused.
///
/// ```
/// use telemetry_core::disclosure::Disclosure;
///
/// let disclosure: Disclosure = serde_json::from_str(r#"{
///     "product": "EventStoreDB", "collector": "Event Store Ltd",
///     "how_to_opt_out": "setting EVENTSTORE_TELEMETRY_OPTOUT=true",
///     "link": "https://developers.eventstore.com/server/v23.10/diagnostics/telemetry.html"
/// }"#)?;
/// assert!(disclosure.to_stderr);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(from = "DisclosureFields")]
pub struct Disclosure {
    /// The product, e.g. `EventStoreDB`.
    pub product: String,
    /// Who collects the data, e.g. `Event Store Ltd`.
    pub collector: String,
    /// How to opt out, completing "You can opt out of sending telemetry by ...".
    pub how_to_opt_out: String,
    /// Where to read more.
    pub link: String,
    /// A full replacement for the opted-in (or undecided) text.
    pub custom_enabled: Option<String>,
    /// A full replacement for the opted-out text.
    pub custom_disabled: Option<String>,
    /// Print the disclosure to standard error where the log would not show it (default
    /// true): when no logger takes the `telemetry` target at level info. With a logger that
    /// does, it is shown once, by the logger.
    pub to_stderr: bool,
    /// How long an undecided installation waits before its first report (the reporter sets
    /// it from [`crate::product::reporter::ReporterBuilder::undecided_delay`]; default 1 hour).
    pub undecided_delay: Duration,
    /// Whether what is recorded during the undecided delay is sent once it ends (the reporter
    /// sets it from [`crate::product::reporter::ReporterBuilder::send_undecided_period`]).
    pub undecided_period_sent: bool,
}

/// [`Disclosure`] as a configuration file writes it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DisclosureFields {
    product: String,
    collector: String,
    how_to_opt_out: String,
    link: String,
    #[serde(default)]
    custom_enabled: Option<String>,
    #[serde(default)]
    custom_disabled: Option<String>,
    #[serde(default)]
    to_stderr: Option<bool>,
}

impl From<DisclosureFields> for Disclosure {
    fn from(fields: DisclosureFields) -> Self {
        let defaults = Disclosure::new(
            fields.product,
            fields.collector,
            fields.how_to_opt_out,
            fields.link,
        );
        Disclosure {
            custom_enabled: fields.custom_enabled,
            custom_disabled: fields.custom_disabled,
            to_stderr: fields.to_stderr.unwrap_or(defaults.to_stderr),
            ..defaults
        }
    }
}

impl Disclosure {
    /// A disclosure from the default template.
    pub fn new(
        product: impl Into<String>,
        collector: impl Into<String>,
        how_to_opt_out: impl Into<String>,
        link: impl Into<String>,
    ) -> Self {
        Disclosure {
            product: product.into(),
            collector: collector.into(),
            how_to_opt_out: how_to_opt_out.into(),
            link: link.into(),
            custom_enabled: None,
            custom_disabled: None,
            to_stderr: true,
            undecided_delay: Duration::from_secs(3600),
            undecided_period_sent: false,
        }
    }

    /// Uses the product's own texts for the enabled and the disabled case.
    pub fn with_texts(mut self, enabled: impl Into<String>, disabled: impl Into<String>) -> Self {
        self.custom_enabled = Some(enabled.into());
        self.custom_disabled = Some(disabled.into());
        self
    }

    /// Whether to print to standard error where the log would not show it (see
    /// [`Disclosure::to_stderr`](field@Disclosure::to_stderr)).
    pub fn to_stderr(mut self, yes: bool) -> Self {
        self.to_stderr = yes;
        self
    }

    /// The text for `decision`: the opted-out text names the source that disabled telemetry.
    pub fn text(&self, decision: &ConsentDecision) -> String {
        let opted_out = decision.state == Consent::Disabled;
        if let (true, Some(custom)) = (opted_out, &self.custom_disabled) {
            return custom.clone();
        }
        if let (false, Some(custom)) = (opted_out, &self.custom_enabled) {
            return custom.clone();
        }
        // "FerretDB Inc." ends its own sentence.
        let end = if self.collector.ends_with('.') {
            ""
        } else {
            "."
        };
        let first = format!(
            "{} collects anonymous usage data in order to improve your experience. The data is collected by {}{end}",
            self.product, self.collector
        );
        let second = if opted_out {
            format!(
                "You have opted out of sending telemetry, through {}. Nothing is sent; if you \
                 opt in later, only what is recorded from then on is sent.",
                decision.decided_by
            )
        } else if decision.state == Consent::Undecided {
            let from = if self.undecided_period_sent {
                "what was recorded since start"
            } else {
                "what is recorded from then on"
            };
            format!(
                "Nothing is sent for {} after start-up; then {from} is sent unless you opt \
                 out. You can opt out of sending telemetry by {}.",
                describe_duration(self.undecided_delay),
                self.how_to_opt_out
            )
        } else {
            format!(
                "You can opt out of sending telemetry by {}.",
                self.how_to_opt_out
            )
        };
        format!(
            "Telemetry\n---------\n{first}\n{second}\nFor more information visit {}",
            self.link
        )
    }

    /// Sets the undecided delay and whether that period's data is sent, as the text states them.
    pub fn undecided(mut self, delay: Duration, period_sent: bool) -> Self {
        self.undecided_delay = delay;
        self.undecided_period_sent = period_sent;
        self
    }

    /// Logs the text (target `telemetry`, level info, one record per line; through `tracing`
    /// with the `tracing` feature) and, if configured, prints it to standard error when no
    /// logger or subscriber takes those records, so the user sees it exactly once either way.
    /// Returns the text.
    pub fn show(&self, decision: &ConsentDecision) -> String {
        let text = self.text(decision);
        let logged = crate::diagnostics::info_is_shown();
        for line in text.lines() {
            crate::diagnostics::diag!(info, "{line}");
        }
        if self.to_stderr && !logged {
            eprintln!("{text}");
        }
        text
    }
}

/// `delay` in words: `1 hour`, `90 minutes`, `30 seconds`, `2 days`.
pub(crate) fn describe_duration(delay: Duration) -> String {
    let secs = delay.as_secs();
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3600 && s % 3600 == 0 => (s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::consent::SourceKind;
    use std::collections::BTreeMap;

    fn decision(state: Consent, by: SourceKind) -> ConsentDecision {
        ConsentDecision {
            state,
            decided_by: by,
            narrowed: BTreeMap::new(),
            decided_at: None,
        }
    }

    #[test]
    fn texts_follow_the_eventstoredb_template() {
        let d = Disclosure::new(
            "EventStoreDB",
            "Event Store Ltd",
            "setting the EVENTSTORE_TELEMETRY_OPTOUT environment variable to true",
            "https://eventstore.com/telemetry",
        );
        let on = d.text(&decision(Consent::Enabled, SourceKind::Default));
        assert!(on.starts_with("Telemetry\n---------\nEventStoreDB collects anonymous usage data"));
        assert!(on.contains(
            "You can opt out of sending telemetry by setting the EVENTSTORE_TELEMETRY_OPTOUT"
        ));
        assert!(on.ends_with("For more information visit https://eventstore.com/telemetry"));
        let off = d.text(&decision(
            Consent::Disabled,
            SourceKind::Env("EVENTSTORE_TELEMETRY_OPTOUT".into()),
        ));
        assert!(off.contains("You have opted out of sending telemetry, through the EVENTSTORE_TELEMETRY_OPTOUT environment variable"));
        let custom = d.clone().with_texts("on", "off");
        assert_eq!(
            custom.text(&decision(Consent::Disabled, SourceKind::DoNotTrack)),
            "off"
        );
        assert_eq!(
            custom.text(&decision(Consent::Undecided, SourceKind::Default)),
            "on"
        );
    }

    #[test]
    fn the_undecided_text_states_the_actual_delay() {
        let d = Disclosure::new("P", "C", "setting X=1", "L");
        let undecided = decision(Consent::Undecided, SourceKind::Default);
        assert!(d.text(&undecided).contains(
            "Nothing is sent for 1 hour after start-up; then what is recorded from then on"
        ));
        let d = d.undecided(Duration::from_secs(90 * 60), true);
        assert!(
            d.text(&undecided)
                .contains("for 90 minutes after start-up; then what was recorded since start"),
            "{}",
            d.text(&undecided)
        );
        assert_eq!(describe_duration(Duration::from_secs(2 * 86_400)), "2 days");
        assert_eq!(describe_duration(Duration::from_secs(1)), "1 second");
    }
}
