//! `fork()` safety. A child process has only the thread that called `fork`: a lock that another
//! thread of the parent held at that moment stays locked in the child forever. The registry's
//! lock and the process's anonymizer are therefore taken just before a fork and released on
//! both sides after it (`pthread_atfork`), so the child starts with both free. Installed when
//! either is first used.
//!
//! The reporter's thread does not survive a fork either: a [`crate::reporter::Reporter`]
//! inherited by a child is inert (see its docs).

#[cfg(unix)]
mod imp {
    use std::any::Any;
    use std::cell::RefCell;
    use std::sync::Once;

    thread_local! {
        /// The guards taken before a fork, dropped after it (on the forking thread, in the
        /// parent and in the child).
        static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }

    extern "C" fn prepare() {
        // Always in this order (the anonymizer never takes the registry's lock while it holds
        // its own, and the registry never hashes under its lock).
        let anonymizer = crate::anonymize::lock_for_fork();
        let registry = crate::registry::registry().lock_for_fork();
        HELD.with(|held| {
            let mut held = held.borrow_mut();
            held.push(anonymizer);
            held.push(registry);
        });
    }

    extern "C" fn after() {
        HELD.with(|held| held.borrow_mut().clear());
    }

    /// Registers the fork handlers, once per process.
    pub(crate) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            // SAFETY: the handlers are `extern "C"` functions that live as long as the
            // process; `pthread_atfork` only records them.
            unsafe {
                libc::pthread_atfork(Some(prepare), Some(after), Some(after));
            }
        });
    }
}

#[cfg(unix)]
pub(crate) use imp::install;

/// No `fork` elsewhere.
#[cfg(not(unix))]
pub(crate) fn install() {}
