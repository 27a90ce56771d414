//! The product side: what a product does with its telemetry, from asking for consent to
//! sending a report.
//!
//! [`consent`] (sources, rules, the saved decision), the start-up [`disclosure`], [`identity`]
//! (the installation id), system and build [`facts`], the [`Report`] itself and a product's own
//! [`payload`] made from it, local [`sink`]s, an opt-in [`crash`] hook, and the [`reporter`]
//! that shows the disclosure and then delivers reports on a schedule through its consent gate,
//! retries and spool.
//!
//! The product side builds on the engine and on privacy; the exporters build on it.

mod config_duration;
pub mod consent;
pub mod crash;
pub mod disclosure;
pub(crate) mod endpoint_url;
pub mod facts;
pub mod identity;
pub mod payload;
pub(crate) mod report;
pub mod reporter;
pub mod sink;

pub use report::{Application, ApplicationError, INVALID_APPLICATION_TEXT, Report};
pub use sink::{JsonFileSink, LogSink, Sink, SinkError, StdoutSink};
