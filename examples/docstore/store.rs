//! The document store: named collections, writes, searches with a query cache, compaction
//! and checkpoints.

use crate::collection::{Collection, Document};
use crate::query::{Query, QueryError, QueryErrorCode};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};
use telemetry_core::{
    Counter, Gauge, Histogram, LabeledCounter, RegistryError, Telemetry, count_usage, timed,
};

/// Tunables of the store, reported in the `configuration` section.
#[derive(Clone, Debug, Telemetry)]
pub struct Config {
    /// Query results kept in the cache.
    pub cache_capacity: usize,
    /// Hits per result page.
    pub page_size: usize,
    /// A collection is compacted when this share of its versions is dead.
    pub compaction_threshold: f64,
    /// Terms returned by `suggest`.
    pub suggest_limit: usize,
    /// Writes to a collection that its cached result pages survive: searches are near-real
    /// time, like after an Elasticsearch refresh, which keeps popular queries cached.
    pub cache_staleness_writes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cache_capacity: 256,
            page_size: 10,
            compaction_threshold: 0.10,
            suggest_limit: 5,
            cache_staleness_writes: 25,
        }
    }
}

#[derive(Debug)]
pub enum StoreError {
    UnknownCollection(String),
    CollectionExists(String),
    DuplicateKey { collection: String, key: String },
    NotFound { collection: String, key: String },
    InvalidDocument(&'static str),
    Query(QueryError),
    Serialize(serde_json::Error),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::UnknownCollection(c) => write!(f, "no collection `{c}`"),
            StoreError::CollectionExists(c) => write!(f, "collection `{c}` already exists"),
            StoreError::DuplicateKey { collection, key } => {
                write!(f, "`{key}` already exists in `{collection}`")
            }
            StoreError::NotFound { collection, key } => {
                write!(f, "no document `{key}` in `{collection}`")
            }
            StoreError::InvalidDocument(why) => write!(f, "invalid document: {why}"),
            StoreError::Query(e) => write!(f, "invalid query: {e}"),
            StoreError::Serialize(e) => write!(f, "serialization failed: {e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Query(e) => Some(e),
            StoreError::Serialize(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Serialize(e)
    }
}

/// The metrics that are not function calls, registered once when the store is built.
struct Metrics {
    cache_hits: Counter,
    cache_misses: Counter,
    cache_evictions: Counter,
    zero_results: Counter,
    next_pages: Counter,
    query_errors: LabeledCounter<(QueryErrorCode,)>,
    reclaimed: Counter,
    results: Histogram,
    document_size: Histogram,
    checkpoint_size: Histogram,
    documents: Gauge,
    index_terms: Gauge,
}

impl Metrics {
    fn register(collections: Arc<AtomicI64>) -> Result<Metrics, RegistryError> {
        telemetry_core::gauge!(
            "docstore.collections",
            description = "Collections in the store",
            callback = move || collections.load(Ordering::Relaxed)
        )?;
        Ok(Metrics {
            cache_hits: telemetry_core::counter!(
                "docstore.cache.hits",
                description = "Searches answered from the query cache"
            )?,
            cache_misses: telemetry_core::counter!(
                "docstore.cache.misses",
                description = "Searches that had to run against the index"
            )?,
            cache_evictions: telemetry_core::counter!(
                "docstore.cache.evictions",
                description = "Cached results evicted to make room"
            )?,
            zero_results: telemetry_core::counter!(
                "docstore.search.zero_results",
                description = "Searches that matched nothing"
            )?,
            next_pages: telemetry_core::counter!(
                "docstore.search.next_page",
                description = "Searches asking for a page after the first"
            )?,
            query_errors: telemetry_core::counter!("docstore.query.errors", description = "Searches rejected because the query did not parse, by error code", labels(code: QueryErrorCode))?,
            reclaimed: telemetry_core::counter!(
                "docstore.compaction.reclaimed",
                description = "Dead document versions purged by compaction"
            )?,
            results: telemetry_core::histogram!(
                "docstore.search.results",
                description = "Documents matched per search"
            )?,
            document_size: telemetry_core::histogram!(
                "docstore.document.size",
                description = "Size of inserted and updated documents as JSON",
                unit = Bytes
            )?,
            checkpoint_size: telemetry_core::histogram!(
                "docstore.checkpoint.size",
                description = "Size of one collection's checkpoint segment",
                unit = Bytes
            )?,
            documents: telemetry_core::gauge!(
                "docstore.documents",
                description = "Live documents in all collections"
            )?,
            index_terms: telemetry_core::gauge!(
                "docstore.index.terms",
                description = "Distinct terms in all indexes, as of the last compaction"
            )?,
        })
    }
}

/// One page of search results.
#[derive(Clone, Debug)]
pub struct SearchPage {
    /// Documents matched in all.
    pub total: usize,
    /// The page's hits: key and score.
    pub hits: Vec<(String, f32)>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    collection: String,
    query: String,
    page: usize,
}

struct CacheEntry {
    epoch: u64,
    last_used: u64,
    page: SearchPage,
}

/// A small LRU cache of result pages. An entry is valid only for the cache epoch of its
/// collection it was computed in (see [`Config::cache_staleness_writes`]), so writes
/// invalidate entries without touching the cache.
struct QueryCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<CacheKey, CacheEntry>,
}

impl QueryCache {
    fn get(&mut self, key: &CacheKey, epoch: u64) -> Option<SearchPage> {
        self.clock += 1;
        let entry = self.entries.get_mut(key)?;
        if entry.epoch != epoch {
            return None;
        }
        entry.last_used = self.clock;
        Some(entry.page.clone())
    }

    /// Stores a page; returns true if another entry was evicted for it.
    fn put(&mut self, key: CacheKey, epoch: u64, page: SearchPage) -> bool {
        let mut evicted = false;
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
                evicted = true;
            }
        }
        let entry = CacheEntry {
            epoch,
            last_used: self.clock,
            page,
        };
        self.entries.insert(key, entry);
        evicted
    }
}

/// What one compaction did.
#[derive(Debug, Default)]
pub struct CompactionStats {
    pub collections: usize,
    pub versions: usize,
    pub postings: usize,
}

/// What one checkpoint wrote.
#[derive(Debug, Default)]
pub struct CheckpointStats {
    pub segments: usize,
    pub bytes: usize,
}

/// Totals for the report's `database` section.
#[derive(Clone, Debug, Telemetry)]
#[telemetry(section = "database")]
pub struct StoreStats {
    pub collections: usize,
    /// One entry per collection; names are hashed, never sent.
    pub per_collection: Vec<CollectionStats>,
    pub documents: usize,
    pub dead_versions: usize,
    pub stored_bytes: usize,
    pub index_terms: usize,
    pub postings: usize,
    pub cached_pages: usize,
}

/// One collection, for the `database` section.
#[derive(Clone, Debug, Telemetry)]
pub struct CollectionStats {
    /// The collection's name: the user's own word, so only its keyed hash leaves.
    #[telemetry(hash)]
    pub name: String,
    pub documents: usize,
    pub stored_bytes: usize,
}

pub struct Store {
    config: Config,
    collections: BTreeMap<String, Collection>,
    cache: QueryCache,
    metrics: Metrics,
    collection_count: Arc<AtomicI64>,
}

impl Store {
    /// An empty store. Registers the store's metrics, so call it once per process.
    pub fn new(config: Config) -> Result<Store, RegistryError> {
        let collection_count = Arc::new(AtomicI64::new(0));
        Ok(Store {
            metrics: Metrics::register(Arc::clone(&collection_count))?,
            cache: QueryCache {
                capacity: config.cache_capacity,
                clock: 0,
                entries: HashMap::new(),
            },
            config,
            collections: BTreeMap::new(),
            collection_count,
        })
    }

    fn collection_mut(&mut self, name: &str) -> Result<&mut Collection, StoreError> {
        self.collections
            .get_mut(name)
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))
    }

    pub fn collection(&self, name: &str) -> Result<&Collection, StoreError> {
        self.collections
            .get(name)
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))
    }

    fn sync_collection_count(&self) {
        self.collection_count
            .store(self.collections.len() as i64, Ordering::Relaxed);
    }

    #[count_usage(
        name = "docstore.collection.create",
        description = "Collections created"
    )]
    pub fn create_collection(&mut self, name: &str) -> Result<(), StoreError> {
        if self.collections.contains_key(name) {
            return Err(StoreError::CollectionExists(name.to_owned()));
        }
        self.collections
            .insert(name.to_owned(), Collection::default());
        self.sync_collection_count();
        Ok(())
    }

    /// Drops a collection and everything in it.
    #[count_usage]
    pub fn drop_collection(&mut self, name: &str) -> Result<usize, StoreError> {
        let collection = self
            .collections
            .remove(name)
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))?;
        self.cache.entries.retain(|key, _| key.collection != name);
        self.metrics.documents.add(-(collection.len() as i64));
        self.sync_collection_count();
        Ok(collection.len())
    }

    /// Inserts a new document under `key`.
    #[count_usage]
    #[timed]
    pub fn insert(&mut self, collection: &str, key: &str, body: Value) -> Result<(), StoreError> {
        let doc = self.prepare(key, body)?;
        let target = self.collection_mut(collection)?;
        if target.contains(key) {
            return Err(StoreError::DuplicateKey {
                collection: collection.to_owned(),
                key: key.to_owned(),
            });
        }
        target.put(doc);
        self.metrics.documents.add(1);
        Ok(())
    }

    /// Imports many documents at once, as a migration or a restore does.
    #[count_usage(name = "docstore.import.batches", description = "Bulk imports")]
    pub fn insert_batch<I>(&mut self, collection: &str, docs: I) -> Result<usize, StoreError>
    where
        I: IntoIterator<Item = (String, Value)>,
    {
        let mut imported = 0;
        for (key, body) in docs {
            self.insert(collection, &key, body)?;
            imported += 1;
        }
        Ok(imported)
    }

    #[count_usage(
        name = "docstore.update",
        description = "Documents replaced by a new version"
    )]
    pub fn update(&mut self, collection: &str, key: &str, body: Value) -> Result<(), StoreError> {
        let doc = self.prepare(key, body)?;
        let target = self.collection_mut(collection)?;
        if !target.contains(key) {
            return Err(StoreError::NotFound {
                collection: collection.to_owned(),
                key: key.to_owned(),
            });
        }
        target.put(doc);
        Ok(())
    }

    /// Deletes the document under `key`.
    #[count_usage]
    pub fn delete(&mut self, collection: &str, key: &str) -> Result<Document, StoreError> {
        let doc = self
            .collection_mut(collection)?
            .remove(key)
            .ok_or_else(|| StoreError::NotFound {
                collection: collection.to_owned(),
                key: key.to_owned(),
            })?;
        self.metrics.documents.add(-1);
        Ok(doc)
    }

    /// Looks a document up by key.
    #[count_usage]
    pub fn get(&self, collection: &str, key: &str) -> Result<Option<&Value>, StoreError> {
        Ok(self.collection(collection)?.get(key).map(|doc| &doc.body))
    }

    /// Validates a document and measures it.
    fn prepare(&self, key: &str, body: Value) -> Result<Document, StoreError> {
        let Some(fields) = body.as_object() else {
            return Err(StoreError::InvalidDocument("a document is a JSON object"));
        };
        for field in ["title", "body"] {
            if !fields.get(field).is_some_and(Value::is_string) {
                return Err(StoreError::InvalidDocument(
                    "`title` and `body` must be strings",
                ));
            }
        }
        let size = serde_json::to_vec(&body)?.len();
        self.metrics.document_size.record(size as u64);
        Ok(Document {
            key: key.to_owned(),
            body,
            size,
        })
    }

    #[count_usage(
        name = "docstore.search.calls",
        description = "Full-text searches, by whether they asked for the first page",
        labels(first_page = page == 0)
    )]
    #[timed(
        name = "docstore.search.duration",
        description = "Time to answer a search, cache hits included"
    )]
    pub fn search(
        &mut self,
        collection: &str,
        query: &str,
        page: usize,
    ) -> Result<SearchPage, StoreError> {
        if page > 0 {
            self.metrics.next_pages.increment();
        }
        let epoch = self.collection(collection)?.generation() / self.config.cache_staleness_writes;
        let key = CacheKey {
            collection: collection.to_owned(),
            query: query.trim().to_owned(),
            page,
        };
        if let Some(hit) = self.cache.get(&key, epoch) {
            self.metrics.cache_hits.increment();
            return Ok(hit);
        }
        self.metrics.cache_misses.increment();
        let parsed =
            Query::parse(query).inspect_err(|e| self.metrics.query_errors.increment((e.code(),)));
        let parsed = parsed.map_err(StoreError::Query)?;
        let matches = self.collection(collection)?.execute(&parsed);
        self.metrics.results.record(matches.len() as u64);
        if matches.is_empty() {
            self.metrics.zero_results.increment();
        }
        let size = self.config.page_size;
        let result = SearchPage {
            total: matches.len(),
            hits: matches
                .iter()
                .skip(page * size)
                .take(size)
                .map(|(doc, score)| (doc.key.clone(), *score))
                .collect(),
        };
        if self.cache.put(key, epoch, result.clone()) {
            self.metrics.cache_evictions.increment();
        }
        Ok(result)
    }

    #[count_usage(
        name = "docstore.suggest",
        description = "Autocomplete suggestions served"
    )]
    pub fn suggest(&self, collection: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        let index = self.collection(collection)?.index();
        let prefix = prefix.to_lowercase();
        let mut terms: Vec<(usize, &str)> = index
            .terms_with_prefix(&prefix)
            .map(|(term, postings)| (index.live_df(postings), term))
            .filter(|&(df, _)| df > 0)
            .collect();
        terms.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        Ok(terms
            .into_iter()
            .take(self.config.suggest_limit)
            .map(|(_, term)| term.to_owned())
            .collect())
    }

    /// Compacts the collections with enough dead versions.
    #[count_usage]
    #[timed(
        name = "docstore.compaction.duration",
        description = "Time to compact the store"
    )]
    pub fn compact(&mut self) -> CompactionStats {
        let mut stats = CompactionStats::default();
        for collection in self.collections.values_mut() {
            let dead = collection.dead_versions() as f64;
            let total = dead + collection.len() as f64;
            if dead > 0.0 && dead / total >= self.config.compaction_threshold {
                let (versions, postings) = collection.compact();
                stats.collections += 1;
                stats.versions += versions;
                stats.postings += postings;
            }
        }
        self.metrics.reclaimed.increment_by(stats.versions as u64);
        let terms = self
            .collections
            .values()
            .map(|c| c.index().term_count())
            .sum::<usize>();
        self.metrics.index_terms.set(terms as i64);
        stats
    }

    /// Writes a checkpoint of every collection.
    ///
    /// One segment per collection; it yields between segments so that a server could keep
    /// answering requests meanwhile.
    #[count_usage]
    #[timed]
    pub async fn checkpoint(&self) -> Result<CheckpointStats, StoreError> {
        let mut stats = CheckpointStats::default();
        for (name, collection) in &self.collections {
            let mut segment = Vec::new();
            serde_json::to_writer(&mut segment, &serde_json::json!({ "collection": name }))?;
            segment.push(b'\n');
            for doc in collection.documents() {
                serde_json::to_writer(&mut segment, &(&doc.key, &doc.body))?;
                segment.push(b'\n');
            }
            self.metrics.checkpoint_size.record(segment.len() as u64);
            stats.segments += 1;
            stats.bytes += segment.len();
            YieldNow(false).await;
        }
        Ok(stats)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> StoreStats {
        let all = || self.collections.values();
        StoreStats {
            collections: self.collections.len(),
            per_collection: self
                .collections
                .iter()
                .map(|(name, c)| CollectionStats {
                    name: name.clone(),
                    documents: c.len(),
                    stored_bytes: c.documents().map(|d| d.size).sum(),
                })
                .collect(),
            documents: all().map(Collection::len).sum(),
            dead_versions: all().map(Collection::dead_versions).sum(),
            stored_bytes: all().flat_map(Collection::documents).map(|d| d.size).sum(),
            index_terms: all().map(|c| c.index().term_count()).sum(),
            postings: all().map(|c| c.index().posting_count()).sum(),
            cached_pages: self.cache.entries.len(),
        }
    }
}

/// Lets the executor run something else once, like `tokio::task::yield_now`.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
