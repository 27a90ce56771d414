//! Every supported shape, in a crate of its own, under `#![deny(warnings)]`, with a local
//! module that shadows the crate's name.
#![deny(warnings)]

use ::telemetry_core::{count_usage, timed};

#[allow(dead_code)]
mod telemetry_core {}

/// Free function with a doc comment.
#[count_usage]
#[timed]
pub fn free(x: u32) -> u32 {
    x
}

#[timed(name = "pass.generic", description = "A generic function")]
pub fn generic<T: Clone>(t: &T) -> T
where
    T: std::fmt::Debug,
{
    t.clone()
}

#[count_usage]
pub fn iter() -> impl Iterator<Item = u8> {
    0..3
}

#[count_usage]
#[timed]
pub async fn fetch() -> u8 {
    1
}

#[count_usage]
pub unsafe fn raw(p: *const u8) -> u8 {
    unsafe { *p }
}

pub struct S(u8);

impl S {
    #[count_usage]
    pub fn new() -> Self {
        S(0)
    }
    #[count_usage]
    pub fn by_ref(&self) -> u8 {
        self.0
    }
    #[timed]
    pub fn by_mut(&mut self) {
        self.0 += 1;
    }
    #[count_usage]
    pub fn by_value(self) -> u8 {
        self.0
    }
}

pub trait T {
    fn f(&self) -> u8;
    #[count_usage(name = "pass.default_method")]
    fn default_method(&self) -> u8 {
        self.f()
    }
}

impl T for S {
    #[timed]
    fn f(&self) -> u8 {
        self.0
    }
}

#[count_usage(name = "pass.result")]
pub fn result(s: &str) -> Result<u8, std::num::ParseIntError> {
    let n: u8 = s.parse()?;
    Ok(n)
}

// One-line bodies: the expansion must not make their braces look unnecessary.
#[count_usage]
pub fn one_line(x: u32) -> u32 { x + 1 }

#[count_usage]
pub fn one_line_value(x: u32) -> u32 { x }

#[timed(name = "pass.one_line_timed")]
pub fn one_line_timed(x: u32) -> u32 { x + 1 }

#[count_usage]
pub async fn one_line_async(x: u32) -> u32 { x + 1 }

// From `macro_rules!`: a body as `$body:block` and a name as `$metric:literal`.
macro_rules! instrumented {
    ($name:ident, $metric:literal, $body:block) => {
        #[count_usage(name = $metric)]
        #[timed(name = "pass.from_macro.duration")]
        pub fn $name() -> u32 $body
    };
}
instrumented!(from_macro, "pass.from_macro", { 7 });

macro_rules! named {
    ($metric:literal) => {
        #[count_usage(name = $metric)]
        pub fn named_by_macro() {}
    };
}
named!("pass.named_by_macro");

fn main() {
    assert_eq!(one_line(1) + one_line_value(1) + one_line_timed(1), 5);
    drop(one_line_async(1));
    assert_eq!(from_macro(), 7);
    named_by_macro();
    free(1);
    generic(&1);
    iter().count();
    drop(fetch());
    // SAFETY: a valid pointer.
    unsafe { raw(&1) };
    let mut s = S::new();
    s.by_ref();
    s.by_mut();
    s.default_method();
    s.by_value();
    result("1").unwrap();
    let snap = ::telemetry_core::snapshot();
    assert_eq!(snap.counter(concat!(module_path!(), "::free.calls")), Some(1));
    assert_eq!(snap.counter("pass.default_method"), Some(1));
    assert_eq!(snap.counter("pass.from_macro"), Some(1));
    assert_eq!(snap.counter("pass.named_by_macro"), Some(1));
    assert_eq!(snap.histogram(concat!(module_path!(), "::by_mut.duration")).unwrap().count(), 1);
}
