//! `fork()` safety. A child process has only the thread that called `fork`. A lock that another
//! thread of the parent held at that moment stays locked in the child forever, and so does a
//! one-time initialization (a `LazyLock`) that another thread was running. So, just before a
//! fork (`pthread_atfork`'s prepare handler), every [`ForkHook`] runs, in `order`:
//! - the process-wide one-time initializations are finished (the clock's calibration among
//!   them, a few milliseconds once per process), waiting for a thread that is running one;
//! - the process-wide locks are taken, and released on both sides after the fork;
//!
//! so the child starts with all of them usable. Each module declares its own hooks next to what
//! they protect (a linker-collected slice), so this module depends on none of them. The
//! handlers are registered when the program is loaded, before `main` and before any thread
//! exists, so no fork can come before them (and again, a no-op then, at the first use of the
//! registry or the anonymizer, which also keeps this module linked in).
//!
//! The reporter's thread does not survive a fork either: a [`crate::product::reporter::Reporter`]
//! inherited by a child is inert (see its docs).

use std::any::Any;

/// What a module does just before a fork: finish a one-time initialization (returns `None`),
/// or take a lock (returns its guard, dropped after the fork on both sides).
pub(crate) struct ForkHook {
    /// Hooks run in increasing order. One-time initializations are 0. Locks follow their
    /// nesting: no code takes a lock while it holds one of a higher order.
    pub(crate) order: u8,
    pub(crate) prepare: fn() -> Option<Box<dyn Any>>,
}

/// Every module's hooks, collected by the linker.
#[cfg(unix)]
#[linkme::distributed_slice]
pub(crate) static FORK_HOOKS: [ForkHook];

#[cfg(unix)]
mod imp {
    use super::FORK_HOOKS;
    use std::any::Any;
    use std::cell::RefCell;
    use std::sync::Once;

    thread_local! {
        /// The guards taken before a fork, dropped after it (on the forking thread, in the
        /// parent and in the child).
        static HELD: RefCell<Vec<Box<dyn Any>>> = const { RefCell::new(Vec::new()) };
    }

    extern "C" fn prepare() {
        let mut hooks: Vec<_> = FORK_HOOKS.iter().collect();
        hooks.sort_by_key(|hook| hook.order);
        let guards: Vec<Box<dyn Any>> = hooks.iter().filter_map(|hook| (hook.prepare)()).collect();
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

/// Declares a [`ForkHook`] in the calling module: `fork_hook!(NAME, order, || ...)`.
macro_rules! fork_hook {
    ($name:ident, $order:expr, $prepare:expr) => {
        #[cfg(unix)]
        #[linkme::distributed_slice(crate::fork::FORK_HOOKS)]
        static $name: crate::fork::ForkHook = crate::fork::ForkHook {
            order: $order,
            prepare: $prepare,
        };
    };
}
pub(crate) use fork_hook;

#[cfg(all(test, unix))]
mod tests {
    use super::FORK_HOOKS;

    /// The hooks of every module are collected: the one-time initializations (the clock, the
    /// process facts, the gauge epoch) and the five locks, one per lock order.
    #[test]
    fn every_module_hook_is_collected() {
        let mut orders: Vec<u8> = FORK_HOOKS.iter().map(|hook| hook.order).collect();
        orders.sort_unstable();
        assert_eq!(orders, [0, 0, 0, 1, 2, 3, 4, 5]);
    }
}
