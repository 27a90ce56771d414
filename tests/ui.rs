//! Compile-fail tests (each with its expected `.stderr`) and compile-pass tests of the macros.
//! Each file is built as a crate of its own that depends on `telemetry-core`, as a user's is.
//! Refresh the expected output after a deliberate message change with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
