//! The derives, the attributes and the plain API under `#![no_implicit_prelude]`.
#![no_implicit_prelude]
#![deny(warnings)]
extern crate std;
extern crate telemetry_core;

#[derive(telemetry_core::LabelValue, ::std::clone::Clone, ::std::marker::Copy)]
pub enum Backend { Postgres, #[label(rename = "sqlite")] Sqlite }

#[derive(::std::fmt::Debug, telemetry_core::ErrorKind)]
pub enum E { Bad, Worse }

/// Config.
#[derive(telemetry_core::Telemetry)]
#[telemetry(section = "config")]
pub struct Config {
    pub shards: u32,
    pub backend: Backend,
    #[telemetry(hash)]
    pub name: ::std::string::String,
    #[telemetry(skip)]
    pub secret: ::std::string::String,
    pub tags: ::std::vec::Vec<u8>,
    pub maybe: ::std::option::Option<u64>,
}

/// An event.
#[derive(telemetry_core::Telemetry)]
#[telemetry(event = "happened")]
pub struct Happened { pub n: u64 }

#[telemetry_core::count_usage(name = "np.calls", labels(backend = backend))]
pub fn use_backend(backend: Backend) -> u32 { 1 }

#[telemetry_core::count_usage(name = "np.errors", errors)]
pub fn fail() -> ::std::result::Result<(), E> { ::std::result::Result::Err(E::Bad) }

fn main() {
    let _ = use_backend(Backend::Sqlite);
    let _ = fail();
    let _ = E::Worse;
    let _ = Backend::Postgres;
    let _ = telemetry_core::counter!("np.counter");
}
