//! Local endpoints: `/metrics` and `/telemetry` handlers.
