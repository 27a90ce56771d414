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

fn main() {
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
    assert_eq!(snap.histogram(concat!(module_path!(), "::by_mut.duration")).unwrap().count(), 1);
}
