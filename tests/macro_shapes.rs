//! `#[count_usage]` and `#[timed]` on every function shape users write.
#![deny(warnings)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use telemetry_core::testing::capture;
use telemetry_core::{count_usage, timed};

/// Drives a future to completion on this thread (enough for futures that wake themselves).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// Yields once, so the future is polled at least twice.
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Adds one.
#[count_usage]
#[timed]
fn free_fn(x: u32) -> u32 {
    x + 1
}

#[count_usage(name = "shapes.generic")]
#[timed(name = "shapes.generic.duration")]
fn generic<T, U>(t: T, u: U) -> (T, U)
where
    T: Clone + std::fmt::Debug,
    U: Default,
{
    (t.clone(), u)
}

#[count_usage(name = "shapes.impl_trait")]
fn evens(n: u32) -> impl Iterator<Item = u32> {
    (0..n).filter(|x| x % 2 == 0)
}

#[timed(name = "shapes.async")]
#[count_usage(name = "shapes.async.calls")]
async fn fetch(x: u32) -> u32 {
    YieldOnce(false).await;
    std::thread::sleep(std::time::Duration::from_millis(2));
    YieldOnce(false).await;
    x * 2
}

#[count_usage(name = "shapes.unsafe")]
unsafe fn read_raw(p: *const u32) -> u32 {
    // SAFETY: callers pass a valid pointer.
    unsafe { *p }
}

struct Store {
    docs: Vec<String>,
}

impl Store {
    #[count_usage(name = "shapes.new")]
    fn new() -> Self {
        Store { docs: Vec::new() }
    }

    #[count_usage(name = "shapes.by_ref")]
    fn len(&self) -> usize {
        self.docs.len()
    }

    #[count_usage(name = "shapes.by_mut")]
    #[timed(name = "shapes.by_mut.duration")]
    fn push(&mut self, doc: &str) {
        self.docs.push(doc.to_owned());
    }

    #[count_usage(name = "shapes.by_value")]
    fn into_docs(self) -> Vec<String> {
        self.docs
    }

    #[count_usage(name = "shapes.async_method")]
    async fn count_async(&self) -> usize {
        YieldOnce(false).await;
        self.docs.len()
    }
}

trait Backend {
    fn get(&self, key: u32) -> Option<u32>;
}

struct Memory;

impl Backend for Memory {
    /// Looks a key up.
    #[count_usage(name = "shapes.trait_impl")]
    #[timed(name = "shapes.trait_impl.duration")]
    fn get(&self, key: u32) -> Option<u32> {
        (key < 10).then_some(key)
    }
}

#[derive(Debug, PartialEq)]
struct ParseError;

#[count_usage(name = "shapes.question_mark")]
#[timed(name = "shapes.question_mark.duration")]
fn parse_sum(a: &str, b: &str) -> Result<u32, ParseError> {
    let a: u32 = a.parse().map_err(|_| ParseError)?;
    let b: u32 = b.parse().map_err(|_| ParseError)?;
    Ok(a + b)
}

#[count_usage(name = "shapes.early_return")]
#[timed(name = "shapes.early_return.duration")]
fn early(x: u32) -> u32 {
    if x == 0 {
        return 100;
    }
    x
}

#[count_usage(name = "shapes.panics")]
#[timed(name = "shapes.panics.duration")]
fn may_panic(fail: bool) -> u32 {
    if fail {
        panic!("requested failure");
    }
    1
}

/// Keeps other attributes and docs.
#[inline]
#[must_use]
#[count_usage(name = "shapes.attributes")]
#[allow(clippy::needless_return)]
fn with_attributes() -> u32 {
    return 7;
}

#[test]
fn free_function_is_counted_and_timed_under_its_derived_name() {
    let snap = capture(|| {
        assert_eq!(free_fn(1), 2);
        assert_eq!(free_fn(2), 3);
    });
    let counter = concat!(module_path!(), "::free_fn.calls");
    let histogram = concat!(module_path!(), "::free_fn.duration");
    assert_eq!(counter, "macro_shapes::free_fn.calls");
    assert_eq!(snap.counter(counter), Some(2));
    assert_eq!(snap.histogram(histogram).unwrap().count(), 2);
    // The doc comment's first line is the description.
    assert_eq!(&*snap.counters[counter].description, "Adds one.");
    assert_eq!(
        snap.histograms[histogram].unit,
        telemetry_core::Unit::Nanoseconds
    );
}

#[test]
fn generic_and_impl_trait_functions() {
    let snap = capture(|| {
        assert_eq!(generic(1u8, 0u16), (1, 0));
        assert_eq!(generic("a", String::new()), ("a", String::new()));
        assert_eq!(evens(10).count(), 5);
    });
    // One call site, one metric, whatever the type arguments.
    assert_eq!(snap.counter("shapes.generic"), Some(2));
    assert_eq!(
        snap.histogram("shapes.generic.duration").unwrap().count(),
        2
    );
    assert_eq!(snap.counter("shapes.impl_trait"), Some(1));
}

#[test]
fn async_fn_is_timed_from_first_poll_to_completion_across_awaits() {
    let snap = capture(|| {
        let future = fetch(21);
        // Not polled yet: nothing counted.
        assert_eq!(block_on(future), 42);
    });
    assert_eq!(snap.counter("shapes.async.calls"), Some(1));
    let h = snap.histogram("shapes.async").unwrap();
    assert_eq!(h.count(), 1);
    assert!(
        h.min().unwrap() >= 2_000_000,
        "timed across awaits: {:?}",
        h.min()
    );

    let unpolled = capture(|| drop(fetch(1)));
    assert_eq!(unpolled.counter("shapes.async.calls"), Some(0));
    assert_eq!(unpolled.histogram("shapes.async").unwrap().count(), 0);
}

#[test]
fn methods_with_every_receiver_and_associated_functions() {
    let snap = capture(|| {
        let mut store = Store::new();
        store.push("a");
        store.push("b");
        assert_eq!(store.len(), 2);
        assert_eq!(block_on(store.count_async()), 2);
        assert_eq!(store.into_docs().len(), 2);
    });
    assert_eq!(snap.counter("shapes.new"), Some(1));
    assert_eq!(snap.counter("shapes.by_mut"), Some(2));
    assert_eq!(snap.histogram("shapes.by_mut.duration").unwrap().count(), 2);
    assert_eq!(snap.counter("shapes.by_ref"), Some(1));
    assert_eq!(snap.counter("shapes.async_method"), Some(1));
    assert_eq!(snap.counter("shapes.by_value"), Some(1));
}

#[test]
fn trait_impl_unsafe_fn_and_kept_attributes() {
    let value = 5u32;
    let snap = capture(|| {
        let backend: &dyn Backend = &Memory;
        assert_eq!(backend.get(3), Some(3));
        assert_eq!(backend.get(30), None);
        // SAFETY: a valid pointer.
        assert_eq!(unsafe { read_raw(&value) }, 5);
        assert_eq!(with_attributes(), 7);
    });
    assert_eq!(snap.counter("shapes.trait_impl"), Some(2));
    assert_eq!(
        &*snap.counters["shapes.trait_impl"].description,
        "Looks a key up."
    );
    assert_eq!(snap.counter("shapes.unsafe"), Some(1));
    assert_eq!(snap.counter("shapes.attributes"), Some(1));
}

#[test]
fn question_mark_and_early_return_are_counted_and_timed() {
    let snap = capture(|| {
        assert_eq!(parse_sum("1", "2"), Ok(3));
        assert_eq!(parse_sum("x", "2"), Err(ParseError));
        assert_eq!(parse_sum("1", "y"), Err(ParseError));
        assert_eq!(early(0), 100);
        assert_eq!(early(3), 3);
    });
    assert_eq!(snap.counter("shapes.question_mark"), Some(3));
    assert_eq!(
        snap.histogram("shapes.question_mark.duration")
            .unwrap()
            .count(),
        3
    );
    assert_eq!(snap.counter("shapes.early_return"), Some(2));
    assert_eq!(
        snap.histogram("shapes.early_return.duration")
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn unwinding_panics_are_counted_and_timed() {
    let snap = capture(|| {
        assert!(std::panic::catch_unwind(|| may_panic(true)).is_err());
        assert_eq!(may_panic(false), 1);
    });
    assert_eq!(snap.counter("shapes.panics"), Some(2));
    assert_eq!(snap.histogram("shapes.panics.duration").unwrap().count(), 2);
}

#[test]
fn signatures_are_unchanged() {
    // Function pointers of the exact original types.
    let _: fn(u32) -> u32 = free_fn;
    let _: fn(&str, &str) -> Result<u32, ParseError> = parse_sum;
    let _: unsafe fn(*const u32) -> u32 = read_raw;
    let _: fn(&mut Store, &str) = Store::push;
    fn is_send<T: Send>(_: &T) {}
    is_send(&fetch(1));
}

#[test]
fn every_call_site_is_described_before_it_runs() {
    #[count_usage(name = "shapes.never_called", description = "Never called")]
    #[allow(dead_code)]
    fn never_called() {}

    let all = telemetry_core::descriptors();
    let d = all
        .iter()
        .find(|d| d.name == "shapes.never_called")
        .expect("listed");
    assert_eq!(d.kind, telemetry_core::MetricKind::Counter);
    assert_eq!(d.description, "Never called");
    assert_eq!(d.declared_at[0].module_path, "macro_shapes");
    assert!(d.declared_at[0].file.ends_with("macro_shapes.rs"));
    assert_eq!(
        telemetry_core::snapshot().counter("shapes.never_called"),
        Some(0)
    );
}

/// A crate's own `Result<T>` alias.
mod aliased {
    #[derive(Debug, telemetry_core::ErrorKind)]
    pub enum StoreError {
        Full,
        // Listed in the manifest although this test never returns it.
        #[allow(dead_code)]
        Corrupt,
    }

    pub type Result<T> = std::result::Result<T, StoreError>;

    #[telemetry_core::count_usage(name = "shapes.aliased", errors)]
    pub fn store(full: bool) -> Result<()> {
        if full { Err(StoreError::Full) } else { Ok(()) }
    }
}

/// `errors` on a function returning a `Result<T>` alias lists the error type's kinds before
/// the function first runs.
#[test]
fn errors_through_a_result_alias_are_listed_before_the_first_call() {
    let listed = telemetry_core::descriptors()
        .into_iter()
        .find(|d| d.name == "shapes.aliased.errors")
        .expect("declared at link time");
    assert_eq!(
        listed.labels[0].values.as_deref(),
        Some(&["Full".to_owned(), "Corrupt".to_owned()][..])
    );
    assert!(aliased::store(false).is_ok());
    let snap = capture(|| {
        let _ = aliased::store(true);
    });
    assert_eq!(
        snap.counter_with("shapes.aliased.errors", &[("kind", "Full")]),
        Some(1)
    );
}

/// One-line bodies, `macro_rules!` bodies and names, under the strictest lints: CI's clippy
/// run (`--all-targets -D warnings`) checks this module with `clippy::pedantic` and
/// `clippy::nursery` denied as well.
#[rustfmt::skip]
#[deny(warnings, clippy::pedantic, clippy::nursery)]
mod strict {
    use telemetry_core::{count_usage, timed};

    #[count_usage(name = "shapes.strict.one_line")]
    pub fn one_line(x: u32) -> u32 { x + 1 }

    #[count_usage(name = "shapes.strict.value")]
    #[timed(name = "shapes.strict.value.duration")]
    pub fn value(x: u32) -> u32 { x }

    #[timed(name = "shapes.strict.ready")]
    pub async fn ready(x: u32) -> u32 { std::future::ready(x).await + 1 }

    macro_rules! instrumented {
        ($name:ident, $metric:literal, $body:block) => {
            #[count_usage(name = $metric)]
            pub fn $name() -> u32 $body
        };
    }
    instrumented!(from_macro, "shapes.strict.from_macro", { 7 });
}

#[test]
fn one_line_and_macro_bodies_record() {
    let snap = capture(|| {
        assert_eq!(
            strict::one_line(1) + strict::from_macro() + strict::value(1),
            10
        );
        drop(strict::ready(1));
    });
    assert_eq!(snap.counter("shapes.strict.one_line"), Some(1));
    assert_eq!(snap.counter("shapes.strict.from_macro"), Some(1));
}

/// A function returning `impl Future` (not an `async fn`): `#[timed]` times the future to its
/// completion, not only its creation.
#[timed(name = "shapes.impl_future")]
fn slow_future() -> impl std::future::Future<Output = u8> + Send {
    async {
        std::thread::sleep(std::time::Duration::from_millis(30));
        7
    }
}

#[test]
fn timed_on_a_function_returning_impl_future_times_the_future() {
    let snap = capture(|| {
        let future = slow_future();
        assert_eq!(block_on(future), 7);
    });
    let h = snap.histogram("shapes.impl_future").unwrap();
    assert_eq!(h.count(), 1);
    assert!(
        h.max().unwrap() >= 30_000_000,
        "timed to completion: {:?} ns",
        h.max()
    );
}

/// `#[count_usage(errors)]` keeps the body in the function: the shapes a closure broke, under
/// the strictest lints.
#[deny(warnings, clippy::pedantic, clippy::nursery)]
mod errors_shapes {
    use std::panic::Location;
    use telemetry_core::count_usage;

    #[derive(Debug, PartialEq, Eq, telemetry_core::ErrorKind)]
    pub enum StoreError {
        Empty,
        Parse,
    }

    impl From<std::num::ParseIntError> for StoreError {
        fn from(_: std::num::ParseIntError) -> Self {
            Self::Parse
        }
    }

    pub struct Store {
        pub items: Vec<u32>,
    }

    impl Store {
        /// A borrow of `self` in the result.
        #[count_usage(name = "shapes.errors.first_mut", errors)]
        pub fn first_mut(&mut self) -> Result<&mut u32, StoreError> {
            self.items.first_mut().ok_or(StoreError::Empty)
        }

        /// `impl Trait` in the result, an early `return`.
        #[count_usage(name = "shapes.errors.iter", errors)]
        pub fn items(&self) -> Result<impl Iterator<Item = &u32>, StoreError> {
            if self.items.is_empty() {
                return Err(StoreError::Empty);
            }
            Ok(self.items.iter())
        }

        /// `Self` in the result; `?` with a conversion.
        #[count_usage(name = "shapes.errors.push_text", errors)]
        pub fn push_text(&mut self, text: &str) -> Result<&mut Self, StoreError> {
            self.items.push(text.parse()?);
            Ok(self)
        }
    }

    /// The caller's location, as without the attribute.
    #[track_caller]
    #[count_usage(name = "shapes.errors.caller", errors)]
    pub fn caller(fail: bool) -> Result<&'static Location<'static>, StoreError> {
        if fail {
            Err(StoreError::Empty)
        } else {
            Ok(Location::caller())
        }
    }

    pub type Parsed = (String, Vec<u32>, Box<dyn std::fmt::Debug>);

    /// `?` inside a standard macro's arguments; `return` and `?` of a closure stay the
    /// closure's; the tail's type comes from the signature (`collect`, a boxed trait object).
    #[count_usage(name = "shapes.errors.nested", errors)]
    pub fn nested(texts: &[&str]) -> Result<Parsed, StoreError> {
        let first = format!(
            "{}",
            texts.first().ok_or(StoreError::Empty)?.parse::<u32>()?
        );
        let parse = |t: &str| -> Result<u32, std::num::ParseIntError> {
            let n = t.parse::<u32>()?;
            if n > 1000 {
                return Ok(1000);
            }
            Ok(n)
        };
        let all = texts.iter().map(|t| parse(t)).collect::<Result<_, _>>()?;
        Ok((first, all, Box::new(1_u8)))
    }

    /// An `async fn`: `?` across an `.await`.
    #[count_usage(name = "shapes.errors.async", errors)]
    pub async fn parse_later(text: &str) -> Result<u32, StoreError> {
        let text = std::future::ready(text).await;
        Ok(text.parse::<u32>()? + 1)
    }
}

#[test]
fn errors_keep_borrows_impl_trait_callers_and_every_exit() {
    use errors_shapes::{Store, StoreError, caller, nested, parse_later};
    let snap = capture(|| {
        let mut store = Store { items: vec![] };
        assert_eq!(store.first_mut(), Err(StoreError::Empty));
        assert!(store.items().is_err());
        assert_eq!(
            store.push_text("x").err(),
            Some(StoreError::Parse),
            "`?` converts as without the attribute"
        );
        *store.push_text("4").unwrap().first_mut().unwrap() += 1;
        assert_eq!(store.items().unwrap().copied().collect::<Vec<_>>(), [5]);
        let here = std::panic::Location::caller().line();
        assert_eq!(caller(false).unwrap().line(), here + 1);
        assert!(caller(true).is_err());
        let (first, all, _) = nested(&["7", "2000"]).unwrap();
        assert_eq!((first.as_str(), all), ("7", vec![7, 1000]));
        assert_eq!(nested(&["a"]).err(), Some(StoreError::Parse));
        assert_eq!(nested(&[]).err(), Some(StoreError::Empty));
        assert_eq!(nested(&["1", "b"]).err(), Some(StoreError::Parse));
        assert_eq!(block_on(parse_later("1")), Ok(2));
        assert_eq!(block_on(parse_later("z")), Err(StoreError::Parse));
    });
    let errors = |name: &str, kind: &str| snap.counter_with(name, &[("kind", kind)]);
    assert_eq!(errors("shapes.errors.first_mut.errors", "Empty"), Some(1));
    assert_eq!(errors("shapes.errors.iter.errors", "Empty"), Some(1));
    assert_eq!(errors("shapes.errors.push_text.errors", "Parse"), Some(1));
    assert_eq!(errors("shapes.errors.caller.errors", "Empty"), Some(1));
    assert_eq!(errors("shapes.errors.nested.errors", "Parse"), Some(2));
    assert_eq!(errors("shapes.errors.nested.errors", "Empty"), Some(1));
    assert_eq!(errors("shapes.errors.async.errors", "Parse"), Some(1));
    assert_eq!(snap.counter("shapes.errors.nested"), Some(4));
}

#[timed(name = "shapes.sampled", sample = 4)]
fn sampled(x: u64) -> u64 {
    x.rotate_left(3)
}

#[timed(name = "shapes.sampled.async", sample = 2)]
async fn sampled_async(x: u64) -> u64 {
    std::future::ready(x).await
}

#[timed(name = "shapes.sampled.labeled", sample = 8, labels(even: bool = x.is_multiple_of(2)))]
fn sampled_labeled(x: u64) -> u64 {
    x
}

/// `sample = N`: each call is timed with probability 1/N and recorded N times, so the count is
/// a multiple of N and within five standard deviations of the number of calls; the manifest
/// shows the rate.
#[test]
fn sampled_timing_estimates_the_calls_without_bias() {
    const CALLS: u64 = 40_000;
    let snap = capture(|| {
        for i in 0..CALLS {
            std::hint::black_box(sampled(i));
            std::hint::black_box(sampled_labeled(i));
        }
        for i in 0..1_000 {
            block_on(sampled_async(i));
        }
    });
    let check = |count: u64, calls: u64, one_in: u64| {
        assert_eq!(count % one_in, 0, "recorded {one_in} at a time: {count}");
        let p = 1.0 / one_in as f64;
        let sd = one_in as f64 * (calls as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (count as f64 - calls as f64).abs() < 5.0 * sd,
            "{count} estimated for {calls} calls (1 in {one_in})"
        );
    };
    check(snap.histogram("shapes.sampled").unwrap().count(), CALLS, 4);
    check(
        snap.histogram("shapes.sampled.async").unwrap().count(),
        1_000,
        2,
    );
    let total: u64 = ["true", "false"]
        .iter()
        .map(|even| {
            snap.histogram_with("shapes.sampled.labeled", &[("even", even)])
                .map_or(0, |h| h.count())
        })
        .sum();
    check(total, CALLS, 8);
    let listed = telemetry_core::descriptors();
    let rate = |name: &str| {
        listed
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| d.sample_one_in)
    };
    assert_eq!(rate("shapes.sampled"), Some(4));
    assert_eq!(rate("shapes.sampled.labeled"), Some(8));
    assert_eq!(rate("shapes.impl_future"), None);
}
