//! The search box syntax.
//!
//! ```text
//! memory pressure              every word must match
//! "write ahead log"            a phrase: the words in this order
//! repl*                        any term with this prefix
//! tag:storage author:ada       exact filters on fields
//! year>=2020 rating>=4         numeric filters (=, <, <=, >, >=)
//! ```

use crate::index::tokenize;
use std::fmt;
use telemetry_core::{LabelValue, count_usage};

#[derive(Clone, Debug, PartialEq)]
pub enum Clause {
    Term(String),
    Prefix(String),
    Phrase(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Tag(String),
    Author(String),
    /// A numeric field (`year` or `rating`) compared with a value.
    Number(&'static str, Cmp, i64),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    pub clauses: Vec<Clause>,
    pub filters: Vec<Filter>,
}

#[derive(Debug, PartialEq)]
pub enum QueryError {
    Empty,
    UnterminatedPhrase,
    UnknownField(String),
    BadNumber { field: String, value: String },
    PrefixTooShort(String),
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Empty => f.write_str("the query is empty"),
            QueryError::UnterminatedPhrase => f.write_str("a phrase is missing its closing quote"),
            QueryError::UnknownField(field) => write!(f, "unknown field `{field}`"),
            QueryError::BadNumber { field, value } => {
                write!(f, "`{field}` needs a whole number, not `{value}`")
            }
            QueryError::PrefixTooShort(prefix) => {
                write!(
                    f,
                    "prefix `{prefix}*` is too short (two characters at least)"
                )
            }
        }
    }
}

impl std::error::Error for QueryError {}

/// What kind of mistake a rejected query had: the label of `docstore.query.errors` (the
/// error's code, never its text, which holds the user's words).
#[derive(Clone, Copy, Debug, LabelValue)]
pub enum QueryErrorCode {
    Empty,
    UnterminatedPhrase,
    UnknownField,
    BadNumber,
    PrefixTooShort,
}

impl QueryError {
    pub fn code(&self) -> QueryErrorCode {
        match self {
            QueryError::Empty => QueryErrorCode::Empty,
            QueryError::UnterminatedPhrase => QueryErrorCode::UnterminatedPhrase,
            QueryError::UnknownField(_) => QueryErrorCode::UnknownField,
            QueryError::BadNumber { .. } => QueryErrorCode::BadNumber,
            QueryError::PrefixTooShort(_) => QueryErrorCode::PrefixTooShort,
        }
    }
}

const NUMERIC_FIELDS: [&str; 2] = ["year", "rating"];

impl Query {
    /// Parses a query typed in the search box.
    #[count_usage]
    pub fn parse(input: &str) -> Result<Query, QueryError> {
        let mut query = Query::default();
        let mut rest = input.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('"') {
                let end = after.find('"').ok_or(QueryError::UnterminatedPhrase)?;
                let words: Vec<String> = tokenize(&after[..end]).collect();
                match words.len() {
                    0 => {}
                    1 => query.clauses.extend(words.into_iter().map(Clause::Term)),
                    _ => query.clauses.push(Clause::Phrase(words)),
                }
                rest = after[end + 1..].trim_start();
                continue;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (token, tail) = rest.split_at(end);
            rest = tail.trim_start();
            query.push_token(token)?;
        }
        if query.clauses.is_empty() && query.filters.is_empty() {
            return Err(QueryError::Empty);
        }
        Ok(query)
    }

    fn push_token(&mut self, token: &str) -> Result<(), QueryError> {
        if let Some((field, value)) = token.split_once(':') {
            let value = value.to_lowercase();
            self.filters.push(match field {
                "tag" => Filter::Tag(value),
                "author" => Filter::Author(value),
                _ => return Err(QueryError::UnknownField(field.to_owned())),
            });
        } else if let Some(at) = token.find(['<', '>', '=']) {
            let (field, operator) = token.split_at(at);
            let (cmp, value) = [
                (">=", Cmp::Ge),
                ("<=", Cmp::Le),
                (">", Cmp::Gt),
                ("<", Cmp::Lt),
                ("=", Cmp::Eq),
            ]
            .into_iter()
            .find_map(|(op, cmp)| operator.strip_prefix(op).map(|v| (cmp, v)))
            .unwrap_or((Cmp::Eq, operator));
            let field = NUMERIC_FIELDS
                .into_iter()
                .find(|f| *f == field)
                .ok_or_else(|| QueryError::UnknownField(field.to_owned()))?;
            let number = value.parse().map_err(|_| QueryError::BadNumber {
                field: field.to_owned(),
                value: value.to_owned(),
            })?;
            self.filters.push(Filter::Number(field, cmp, number));
        } else if let Some(prefix) = token.strip_suffix('*') {
            let prefix = prefix.to_lowercase();
            if prefix.chars().count() < 2 {
                return Err(QueryError::PrefixTooShort(prefix));
            }
            self.clauses.push(Clause::Prefix(prefix));
        } else {
            self.clauses.extend(tokenize(token).map(Clause::Term));
        }
        Ok(())
    }
}
