//! One collection: its documents, their keys and the inverted index over them, and query
//! execution.

use crate::index::{DocId, InvertedIndex};
use crate::query::{Clause, Filter, Query};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use telemetry_core::count_usage;

/// How many terms a prefix clause expands to at most, most frequent first.
pub const MAX_PREFIX_EXPANSIONS: usize = 32;

/// One stored document.
pub struct Document {
    pub key: String,
    pub body: Value,
    /// The size of its JSON encoding, in bytes.
    pub size: usize,
}

impl Document {
    fn text(&self, field: &str) -> &str {
        self.body.get(field).and_then(Value::as_str).unwrap_or("")
    }
}

#[derive(Default)]
pub struct Collection {
    next_id: DocId,
    docs: BTreeMap<DocId, Document>,
    keys: HashMap<String, DocId>,
    index: InvertedIndex,
    /// Versions replaced or deleted since the last compaction (their postings remain).
    dead_versions: usize,
    /// Bumped by every write; the query cache derives its validity from it.
    generation: u64,
}

impl Collection {
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn dead_versions(&self) -> usize {
        self.dead_versions
    }

    pub fn index(&self) -> &InvertedIndex {
        &self.index
    }

    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.docs.values()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    pub fn get(&self, key: &str) -> Option<&Document> {
        self.keys.get(key).and_then(|id| self.docs.get(id))
    }

    /// Stores `doc` as the newest version of its key; the previous version, if any, becomes
    /// dead. Returns whether a version was replaced.
    pub fn put(&mut self, doc: Document) -> bool {
        let id = self.next_id;
        self.next_id += 1;
        self.generation += 1;
        self.index.add(id, &[doc.text("title"), doc.text("body")]);
        let replaced = self.keys.insert(doc.key.clone(), id);
        self.docs.insert(id, doc);
        if let Some(old) = replaced {
            self.kill(old);
        }
        replaced.is_some()
    }

    /// Removes `key`, returning its document.
    pub fn remove(&mut self, key: &str) -> Option<Document> {
        let id = self.keys.remove(key)?;
        self.generation += 1;
        self.kill(id)
    }

    fn kill(&mut self, id: DocId) -> Option<Document> {
        self.index.forget(id);
        self.dead_versions += 1;
        self.docs.remove(&id)
    }

    /// Purges dead postings. Returns `(dead versions reclaimed, postings removed)`.
    pub fn compact(&mut self) -> (usize, usize) {
        let postings = self.index.purge();
        (std::mem::take(&mut self.dead_versions), postings)
    }

    /// The live documents matching `query`, best first (ties by age), with their scores.
    pub fn execute(&self, query: &Query) -> Vec<(&Document, f32)> {
        let mut clauses: Vec<HashMap<DocId, f32>> = query
            .clauses
            .iter()
            .map(|clause| match clause {
                Clause::Term(term) => self.index.score_term(term),
                Clause::Prefix(prefix) => self.match_prefix(prefix),
                Clause::Phrase(words) => self.match_phrase(words),
            })
            .collect();
        let mut matches: Vec<(DocId, f32)> = if clauses.is_empty() {
            // Filters only: every live document is a candidate.
            self.docs.keys().map(|&id| (id, 0.0)).collect()
        } else {
            // Every clause must match: walk the smallest and probe the others.
            clauses.sort_by_key(HashMap::len);
            let (smallest, others) = clauses.split_first().expect("at least one clause");
            smallest
                .iter()
                .filter_map(|(&id, &score)| {
                    others
                        .iter()
                        .try_fold(score, |sum, other| other.get(&id).map(|s| sum + s))
                        .map(|score| (id, score))
                })
                .collect()
        };
        if !query.filters.is_empty() {
            self.apply_filters(&query.filters, &mut matches);
        }
        matches.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        matches
            .into_iter()
            .filter_map(|(id, score)| self.docs.get(&id).map(|doc| (doc, score)))
            .collect()
    }

    /// Expands a prefix to the most frequent matching terms and scores their union.
    #[count_usage(
        name = "docstore.query.prefix",
        description = "Searches with a prefix clause (`repl*`)"
    )]
    fn match_prefix(&self, prefix: &str) -> HashMap<DocId, f32> {
        let mut expansions: Vec<(usize, &str)> = self
            .index
            .terms_with_prefix(prefix)
            .map(|(term, postings)| (self.index.live_df(postings), term))
            .filter(|&(df, _)| df > 0)
            .collect();
        expansions.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        expansions.truncate(MAX_PREFIX_EXPANSIONS);
        let mut scores: HashMap<DocId, f32> = HashMap::new();
        for (_, term) in expansions {
            for (doc, score) in self.index.score_term(term) {
                *scores.entry(doc).or_default() += score;
            }
        }
        scores
    }

    /// Documents containing the words in this order, scored as the sum of the words' scores.
    #[count_usage(
        name = "docstore.query.phrase",
        description = "Searches with a quoted phrase clause"
    )]
    fn match_phrase(&self, words: &[String]) -> HashMap<DocId, f32> {
        let postings: Vec<HashMap<DocId, &[u32]>> = words
            .iter()
            .map(|word| {
                self.index
                    .postings(word)
                    .iter()
                    .filter(|p| self.index.is_live(p.doc))
                    .map(|p| (p.doc, p.positions.as_slice()))
                    .collect()
            })
            .collect();
        let dfs: Vec<usize> = postings.iter().map(HashMap::len).collect();
        let Some((first, rest)) = postings.split_first() else {
            return HashMap::new();
        };
        first
            .iter()
            .filter(|&(doc, starts)| {
                starts.iter().any(|&start| {
                    rest.iter().enumerate().all(|(i, word)| {
                        word.get(doc).is_some_and(|positions| {
                            positions.binary_search(&(start + i as u32 + 1)).is_ok()
                        })
                    })
                })
            })
            .map(|(&doc, _)| {
                let score = postings
                    .iter()
                    .zip(&dfs)
                    .map(|(word, &df)| self.index.bm25(doc, word[&doc].len(), df))
                    .sum();
                (doc, score)
            })
            .collect()
    }

    /// Narrows search results with field filters.
    ///
    /// `tag:` and `author:` match exactly; `year` and `rating` compare numbers.
    #[count_usage]
    fn apply_filters(&self, filters: &[Filter], matches: &mut Vec<(DocId, f32)>) {
        matches.retain(|(id, _)| {
            let Some(doc) = self.docs.get(id) else {
                return false;
            };
            filters.iter().all(|filter| match filter {
                Filter::Tag(tag) => doc
                    .body
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag))),
                Filter::Author(author) => doc.text("author") == author,
                Filter::Number(field, cmp, value) => doc
                    .body
                    .get(*field)
                    .and_then(Value::as_i64)
                    .is_some_and(|actual| cmp.holds(actual, *value)),
            })
        });
    }
}
