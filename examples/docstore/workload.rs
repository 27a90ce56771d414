//! The synthetic workload: a seeded PRNG, a small vocabulary and the generator of documents,
//! queries and operations. Everything is deterministic for a given seed.

use serde_json::{Value, json};

/// SplitMix64 (Steele, Lea and Flood): tiny, fast and good enough for a workload generator.
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`n > 0`), by multiply-and-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// A uniform value in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An item biased towards the front of the slice (roughly Zipf-like), as word
    /// frequencies in real text are.
    pub fn skewed<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = (self.unit().powf(2.5) * items.len() as f64) as usize;
        &items[index.min(items.len() - 1)]
    }
}

/// Words of the corpus, most frequent first.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "data", "query", "index", "server", "cluster", "memory", "latency", "storage", "node",
    "request", "cache", "release", "error", "config", "replica", "disk", "network", "user",
    "schema", "search", "backup", "thread", "timeout", "version", "service", "log", "shard",
    "token", "document", "metric", "client", "table", "stream", "batch", "commit", "upgrade",
    "rollback", "lock", "queue", "event", "partition", "snapshot", "compaction", "throughput",
    "migration", "endpoint", "payload", "session", "worker", "pipeline", "tenant", "quota",
    "alert", "dashboard", "deploy", "kernel", "socket", "buffer", "checksum", "leader", "follower",
    "election", "heartbeat", "gossip", "consensus", "raft", "journal", "segment", "bloom",
    "filter", "cursor", "planner", "optimizer", "join", "aggregate", "histogram", "sampling",
    "retention", "encryption", "certificate", "rotation", "credential", "audit", "permission",
    "role", "policy", "webhook", "retry", "backoff", "idempotent", "ordering", "watermark",
    "window", "trigger", "scheduler", "cron", "container", "image", "volume", "mount", "probe",
    "readiness", "liveness", "resolver", "proxy", "gateway", "ingress", "latch", "mutex", "atomic",
    "allocator", "fragmentation", "garbage", "collector", "heap", "stack", "profile", "flamegraph",
    "regression", "benchmark", "tuning", "capacity", "forecast", "budget", "incident",
    "postmortem", "runbook", "oncall", "escalation", "severity", "outage", "degraded", "recovery",
    "failover", "region", "zone", "edge", "tiering", "archive", "vacuum", "tombstone", "bitmap",
    "trie", "skiplist", "btree", "lsm", "memtable", "sstable", "manifest", "wal", "fsync", "mmap",
    "prefetch", "readahead",
];

/// Common two- and three-word phrases, so that phrase queries have something to find.
const PHRASES: &[&str] = &[
    "write ahead log",
    "query planner",
    "memory pressure",
    "leader election",
    "cache miss",
    "disk full",
    "rolling upgrade",
    "connection pool",
    "garbage collector",
    "read replica",
    "hot partition",
    "slow query",
    "bloom filter",
    "tail latency",
    "schema migration",
    "backup restore",
];

#[rustfmt::skip]
const TAGS: &[&str] = &[
    "storage", "networking", "security", "performance", "operations", "release", "bug", "feature",
    "docs", "internals", "cloud", "observability", "billing", "ux",
];

#[rustfmt::skip]
const AUTHORS: &[&str] = &[
    "ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "radia", "edsger", "frances",
    "leslie", "sophie",
];

/// One operation of the workload.
pub enum Op {
    Insert {
        collection: &'static str,
        key: String,
        doc: Value,
    },
    Update {
        collection: &'static str,
        key: String,
        doc: Value,
    },
    Delete {
        collection: &'static str,
        key: String,
    },
    Get {
        collection: &'static str,
        key: String,
    },
    Search {
        collection: &'static str,
        query: String,
        page: usize,
    },
    Suggest {
        collection: &'static str,
        prefix: String,
    },
    Export {
        collection: &'static str,
        csv: bool,
    },
}

/// Generates operations and keeps track of which keys are live, so that updates, deletes and
/// lookups target documents that exist (as real clients mostly do).
pub struct Workload {
    rng: SplitMix64,
    collections: Vec<(&'static str, Vec<String>)>,
    next_key: u64,
    popular: Vec<String>,
}

impl Workload {
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        // The queries many users type: a small pool picked from often, which is what makes a
        // query cache worth having.
        let mut popular_rng = SplitMix64::new(seed ^ 0xC0FF_EE00);
        let popular = (0..12).map(|_| random_query(&mut popular_rng)).collect();
        rng.next_u64();
        Workload {
            rng,
            collections: Vec::new(),
            next_key: 0,
            popular,
        }
    }

    /// Starts generating operations for `collection` too.
    pub fn add_collection(&mut self, collection: &'static str) {
        self.collections.push((collection, Vec::new()));
    }

    /// Stops generating operations for `collection`.
    pub fn remove_collection(&mut self, collection: &str) {
        self.collections.retain(|(name, _)| *name != collection);
    }

    /// A new document for `collection` with a fresh key, recorded as live.
    pub fn new_document(&mut self, collection: &'static str) -> (String, Value) {
        self.next_key += 1;
        let key = format!("{}-{:05}", &collection[..3], self.next_key);
        if let Some((_, keys)) = self.collections.iter_mut().find(|(n, _)| *n == collection) {
            keys.push(key.clone());
        }
        (key, self.document())
    }

    /// The next operation.
    pub fn next_op(&mut self) -> Op {
        let slot = self.rng.below(self.collections.len());
        let collection = self.collections[slot].0;
        let has_keys = !self.collections[slot].1.is_empty();
        let roll = self.rng.below(100);
        match roll {
            0..52 => {
                let query = if self.rng.chance(45) {
                    self.rng.pick(&self.popular).clone()
                } else {
                    random_query(&mut self.rng)
                };
                let page = match self.rng.below(10) {
                    0..7 => 0,
                    7..9 => 1,
                    _ => self.rng.between(2, 4),
                };
                Op::Search {
                    collection,
                    query,
                    page,
                }
            }
            52..60 => {
                let word = *self.rng.skewed(WORDS);
                let len = self.rng.between(1, word.len().min(4));
                Op::Suggest {
                    collection,
                    prefix: word[..len].to_owned(),
                }
            }
            60..67 if has_keys => {
                let keys = &self.collections[slot].1;
                let key = keys[self.rng.below(keys.len())].clone();
                Op::Get { collection, key }
            }
            85..93 if has_keys => {
                let keys = &self.collections[slot].1;
                let key = keys[self.rng.below(keys.len())].clone();
                Op::Update {
                    collection,
                    key,
                    doc: self.document(),
                }
            }
            93..99 if has_keys => {
                let keys = &mut self.collections[slot].1;
                let key = keys.swap_remove(self.rng.below(keys.len()));
                Op::Delete { collection, key }
            }
            99..100 => Op::Export {
                collection,
                csv: self.rng.chance(30),
            },
            _ => {
                let (key, doc) = self.new_document(collection);
                Op::Insert {
                    collection,
                    key,
                    doc,
                }
            }
        }
    }

    fn document(&mut self) -> Value {
        let rng = &mut self.rng;
        let title_len = rng.between(3, 7);
        let mut title: Vec<String> = (0..title_len)
            .map(|_| (*rng.skewed(WORDS)).to_owned())
            .collect();
        if let Some(first) = title.first_mut() {
            first[..1].make_ascii_uppercase();
        }
        let mut body = Vec::new();
        for _ in 0..rng.between(6, 14) {
            if rng.chance(25) {
                body.push((*rng.pick(PHRASES)).to_owned());
            } else {
                for _ in 0..rng.between(2, 5) {
                    body.push((*rng.skewed(WORDS)).to_owned());
                }
            }
        }
        let mut tags: Vec<&str> = (0..rng.between(1, 3)).map(|_| *rng.pick(TAGS)).collect();
        tags.sort_unstable();
        tags.dedup();
        json!({
            "title": title.join(" "),
            "body": body.join(" ") + ".",
            "tags": tags,
            "author": *rng.pick(AUTHORS),
            "year": rng.between(2012, 2025),
            "rating": rng.between(1, 5),
        })
    }
}

/// A query as a user would type it in the search box: words, sometimes a quoted phrase or a
/// prefix, sometimes filters; rarely a malformed one.
fn random_query(rng: &mut SplitMix64) -> String {
    let mut parts = Vec::new();
    if rng.chance(20) {
        parts.push(format!("\"{}\"", rng.pick(PHRASES)));
    } else {
        for _ in 0..rng.between(1, 2) {
            parts.push((*rng.skewed(WORDS)).to_owned());
        }
    }
    if rng.chance(15) {
        let word = *rng.skewed(WORDS);
        parts.push(format!("{}*", &word[..word.len().min(3)]));
    }
    if rng.chance(35) {
        parts.push(match rng.below(4) {
            0 => format!("tag:{}", rng.pick(TAGS)),
            1 => format!("author:{}", rng.pick(AUTHORS)),
            2 => format!("year>={}", rng.between(2015, 2024)),
            _ => format!("rating>={}", rng.between(2, 5)),
        });
    }
    if rng.chance(2) {
        // Typos happen: an unterminated phrase or a field that does not exist.
        parts.push(if rng.chance(50) {
            "\"disk".into()
        } else {
            "owner:me".into()
        });
    }
    parts.join(" ")
}
