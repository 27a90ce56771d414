//! A positional inverted index with BM25 scoring.
//!
//! Deleting a document only forgets its length; its postings stay until the next compaction,
//! and every reader skips postings of documents that are no longer live.

use std::collections::{BTreeMap, HashMap};

/// The internal id of one version of a document. Ids only grow, so posting lists stay sorted.
pub type DocId = u32;

const BM25_K1: f32 = 1.2;
const BM25_B: f32 = 0.75;

/// Splits text into lowercase terms of at least two characters.
pub fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.len() >= 2)
        .map(str::to_lowercase)
}

/// One document's occurrences of one term.
pub struct Posting {
    pub doc: DocId,
    pub positions: Vec<u32>,
}

#[derive(Default)]
pub struct InvertedIndex {
    terms: BTreeMap<String, Vec<Posting>>,
    doc_lens: HashMap<DocId, u32>,
    total_len: u64,
}

impl InvertedIndex {
    /// Indexes `doc`'s fields; positions leave a gap between fields so that a phrase cannot
    /// span two of them.
    pub fn add(&mut self, doc: DocId, fields: &[&str]) {
        let mut by_term: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let mut position = 0u32;
        for field in fields {
            for term in tokenize(field) {
                by_term.entry(term).or_default().push(position);
                position += 1;
            }
            position += 1;
        }
        for (term, positions) in by_term {
            self.terms
                .entry(term)
                .or_default()
                .push(Posting { doc, positions });
        }
        self.doc_lens.insert(doc, position);
        self.total_len += u64::from(position);
    }

    /// Marks `doc` as gone; its postings are purged by [`InvertedIndex::purge`].
    pub fn forget(&mut self, doc: DocId) {
        if let Some(len) = self.doc_lens.remove(&doc) {
            self.total_len -= u64::from(len);
        }
    }

    pub fn is_live(&self, doc: DocId) -> bool {
        self.doc_lens.contains_key(&doc)
    }

    /// The postings of `term`, dead ones included.
    pub fn postings(&self, term: &str) -> &[Posting] {
        self.terms.get(term).map_or(&[], Vec::as_slice)
    }

    /// Every indexed term starting with `prefix`, in order.
    pub fn terms_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a [Posting])> + 'a {
        self.terms
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(term, _)| term.starts_with(prefix))
            .map(|(term, postings)| (term.as_str(), postings.as_slice()))
    }

    /// The number of live documents containing `term`.
    pub fn live_df(&self, postings: &[Posting]) -> usize {
        postings.iter().filter(|p| self.is_live(p.doc)).count()
    }

    /// BM25 scores of the live documents containing `term`.
    pub fn score_term(&self, term: &str) -> HashMap<DocId, f32> {
        let postings = self.postings(term);
        let df = self.live_df(postings);
        postings
            .iter()
            .filter(|p| self.is_live(p.doc))
            .map(|p| (p.doc, self.bm25(p.doc, p.positions.len(), df)))
            .collect()
    }

    pub fn bm25(&self, doc: DocId, tf: usize, df: usize) -> f32 {
        let n = self.doc_lens.len() as f32;
        let df = df as f32;
        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
        let avg_len = self.total_len as f32 / n.max(1.0);
        let len = self.doc_lens.get(&doc).copied().unwrap_or(0) as f32;
        let tf = tf as f32;
        idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * (1.0 - BM25_B + BM25_B * len / avg_len))
    }

    /// Drops the postings of dead documents and terms left without postings. Returns the
    /// number of postings removed.
    pub fn purge(&mut self) -> usize {
        let live = &self.doc_lens;
        let mut removed = 0;
        self.terms.retain(|_, postings| {
            let before = postings.len();
            postings.retain(|p| live.contains_key(&p.doc));
            removed += before - postings.len();
            !postings.is_empty()
        });
        removed
    }

    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    pub fn posting_count(&self) -> usize {
        self.terms.values().map(Vec::len).sum()
    }
}
