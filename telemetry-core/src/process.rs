//! Facts of this process that reports carry: when the telemetry runtime was first used
//! (for [`uptime`]) and the per-run [`instance_id`]. Their own module, so that the metric
//! engine can note the start without depending on reports.

use std::sync::LazyLock;
use std::time::Instant;
use uuid::Uuid;

static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);
static INSTANCE_ID: LazyLock<Uuid> = LazyLock::new(Uuid::new_v4);

/// Notes the process start; called when the first thread records, so that
/// [`uptime`] counts from there even if no report is made for hours.
pub(crate) fn mark_started() {
    LazyLock::force(&STARTED);
}

// Makes the start time and the instance id now if they are not yet, so that a forked child
// never finds them being made.
crate::fork::fork_hook!(PROCESS_FORK_HOOK, 0, || {
    LazyLock::force(&STARTED);
    LazyLock::force(&INSTANCE_ID);
    None
});

/// A random id made at the first use in each process and never stored (what Qdrant's
/// telemetry documentation calls the instance id): it tells reports of one run apart and nothing else.
pub fn instance_id() -> Uuid {
    *INSTANCE_ID
}

/// Time since the telemetry runtime was first used in this process (normally at start-up).
pub fn uptime() -> std::time::Duration {
    STARTED.elapsed()
}
