//! Sending one report: attempts through the consent gate, retries with jittered backoff or the
//! server's `Retry-After`.

use super::Worker;
use crate::product::consent::Category;
use crate::product::report::Report;
use crate::product::reporter::gate::Permit;
use crate::product::reporter::transport::{self, Failure, HttpConfig};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the reporter's thread looks up from a request in flight for a shutdown or its
/// deadline.
const ATTEMPT_POLL: Duration = Duration::from_millis(10);

impl Worker {
    /// Fetches the upload configuration if it is stale (under a permit, like every request),
    /// then leaves out of `report` what it does not allow.
    pub(super) fn apply_upload_config(
        &mut self,
        report: &mut Report,
        category: Category,
        generation: u64,
        http: &HttpConfig,
        deadline: Option<Instant>,
    ) {
        let Some(config) = &self.upload_config else {
            return;
        };
        if config.stale() {
            let mut timeout = http.total_timeout.min(Duration::from_secs(5));
            if let Some(deadline) = deadline {
                timeout = timeout.min(deadline.saturating_duration_since(Instant::now()) / 2);
            }
            let fetched = match self.decider.gate.permit(category, generation) {
                Some(permit) if !timeout.is_zero() => {
                    self.client.get(&permit, http, &config.url, timeout)
                }
                _ => Err(Failure::Withdrawn),
            };
            let allowed = match fetched {
                Ok(answer) if answer.status == 200 => {
                    crate::product::reporter::upload_config::Allowed::parse(&answer.body)
                }
                _ => None,
            };
            match allowed {
                Some(allowed) => {
                    if let Some(config) = &mut self.upload_config {
                        config.current = Some((Instant::now(), allowed));
                    }
                }
                None => {
                    crate::diagnostics::diag!(
                        debug,
                        "the telemetry upload configuration could not be fetched; the last one (if any) stays in use"
                    );
                }
            }
        }
        if let Some(config) = &self.upload_config {
            config.apply(report);
        }
    }

    /// One report, with retries. Every attempt asks the gate for a permit first; a consent
    /// change, shutdown or the deadline ends the retries.
    pub(super) fn deliver(
        &mut self,
        category: Category,
        generation: u64,
        http: &HttpConfig,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), Failure> {
        let mut last_error = Failure::OutOfTime;
        for attempt in 0..=http.retries {
            let budget = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => http.total_timeout,
            };
            if budget.is_zero() {
                return Err(Failure::OutOfTime);
            }
            // A decision saved by another process since the last attempt counts too.
            self.decider.adopt_saved();
            let Some(permit) = self.decider.gate.permit(category, generation) else {
                return Err(Failure::Withdrawn);
            };
            let answer = self.attempt(
                permit,
                http,
                payload,
                budget.min(http.total_timeout),
                deadline,
            );
            let wait = match answer {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    self.gate().lock().status.delivered += 1;
                    self.note_version(&answer.body);
                    return Ok(());
                }
                Ok(answer) => {
                    last_error = Failure::Status(answer.status);
                    let retryable = answer.status == 429 || answer.status >= 500;
                    if !retryable {
                        return Err(last_error);
                    }
                    answer.retry_after.map(|d| d.min(Duration::from_secs(3600)))
                }
                Err(Failure::Withdrawn) => return Err(Failure::Withdrawn),
                Err(e) => {
                    last_error = e;
                    None
                }
            };
            if attempt == http.retries {
                break;
            }
            let backoff = wait.unwrap_or_else(|| jittered_backoff(http.backoff, attempt));
            if !self.pause(backoff, deadline, generation) {
                break;
            }
        }
        Err(last_error)
    }

    /// One request, made on a thread of its own so that the reporter's thread can stop
    /// waiting for it: when the shutdown starts (for a regular report) or `deadline` passes
    /// (the final report), the request is abandoned (its thread ends when its own timeout
    /// does) and the report stays in the spool for the next start.
    pub(super) fn attempt(
        &self,
        permit: Permit,
        http: &HttpConfig,
        payload: &[u8],
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<transport::Answer, Failure> {
        let (tx, rx) = mpsc::channel();
        let (client, config, body) = (self.client.clone(), http.clone(), payload.to_vec());
        let spawned = std::thread::Builder::new()
            .name("telemetry-send".to_owned())
            .spawn(move || {
                let _ = tx.send(client.post(&permit, &config, &body, timeout));
            });
        if spawned.is_err() {
            return Err(Failure::Transport(
                "no thread could be started for the request".to_owned(),
            ));
        }
        loop {
            match rx.recv_timeout(ATTEMPT_POLL) {
                Ok(answer) => return answer,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Transport("the request stopped".to_owned()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let out_of_time = match deadline {
                        Some(deadline) => Instant::now() >= deadline,
                        None => self.gate().lock().shutdown.is_some(),
                    };
                    if out_of_time {
                        return Err(Failure::OutOfTime);
                    }
                }
            }
        }
    }
}

/// `base * 2^attempt`, at most 5 minutes, with "equal jitter": a random point in the second
/// half of that range, so many installations that failed together do not retry together.
pub(crate) fn jittered_backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(Duration::from_secs(300));
    // Not for security: a failed draw only makes this retry less spread out.
    let random = getrandom::u64().unwrap_or(0);
    let half = ceiling / 2;
    half + Duration::from_nanos(random % (half.as_nanos() as u64).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..5 {
            let ceiling = Duration::from_secs(1 << attempt);
            let d = jittered_backoff(Duration::from_secs(1), attempt);
            assert!(d >= ceiling / 2 && d <= ceiling, "{attempt}: {d:?}");
        }
        assert!(jittered_backoff(Duration::from_secs(1), 40) <= Duration::from_secs(300));
    }
}
