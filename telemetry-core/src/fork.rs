//! `fork()` safety. A child process has only the thread that called `fork`. A lock that another
//! thread of the parent held at that moment stays locked in the child forever, and so does a
//! one-time initialization (a `LazyLock`) that another thread was running. So, just before a
//! fork (`pthread_atfork`'s prepare handler):
//! - the process-wide one-time initializations are finished (the clock's calibration among
//!   them, a few milliseconds once per process), waiting for a thread that is running one;
//! - the process-wide locks are taken, and released on both sides after the fork;
//!
//! so the child starts with all of them usable. The handlers are registered when the program is
//! loaded, before `main` and before any thread exists, so no fork can come before them (and
//! again, a no-op then, at the first use of the registry or the anonymizer, for a platform
//! where the load-time registration is not available).
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
        crate::tick_clock::force();
        crate::report::force_statics();
        crate::gauges::force_epoch();
        // Always in this order: no code takes one of these while it holds a later one (the
        // key file's path is read and released before the anonymizer is locked, the registry
        // never hashes under its lock, and a panic under the registry's lock records its
        // location last).
        let guards = [
            crate::anonymize::lock_key_file_for_fork(),
            crate::anonymize::lock_for_fork(),
            crate::registry::registry().lock_for_fork(),
            crate::crash::lock_for_fork(),
            crate::event::lock_for_fork(),
        ];
        HELD.with(|held| held.borrow_mut().extend(guards));
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

    extern "C" fn install_at_load() {
        install();
    }

    /// Run by the loader before `main`, while the process has one thread: an entry in the
    /// initializer table that ELF (`.init_array`) and Mach-O (`__mod_init_func`) loaders call.
    #[used]
    #[cfg_attr(
        any(
            target_os = "linux",
            target_os = "android",
            target_os = "freebsd",
            target_os = "netbsd",
            target_os = "openbsd",
            target_os = "dragonfly",
            target_os = "illumos",
            target_os = "solaris"
        ),
        unsafe(link_section = ".init_array")
    )]
    #[cfg_attr(
        target_vendor = "apple",
        unsafe(link_section = "__DATA,__mod_init_func")
    )]
    static INSTALL_AT_LOAD: extern "C" fn() = install_at_load;
}

#[cfg(unix)]
pub(crate) use imp::install;

/// No `fork` elsewhere.
#[cfg(not(unix))]
pub(crate) fn install() {}
