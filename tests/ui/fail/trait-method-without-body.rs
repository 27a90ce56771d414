use telemetry_core::timed;

trait Backend {
    #[timed]
    fn get(&self, key: u32) -> Option<u32>;
}

fn main() {}
