//! Byte-level mutation of real payloads for the parsers' property tests, shared by the NBP and
//! OpenRouter crates (included with `#[path]`, as `tests/support` shares the NBP fake).

use proptest::prelude::*;

/// One edit of a payload; positions are taken modulo its length.
#[derive(Debug, Clone)]
pub enum Edit {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Splice(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

/// A random edit; `tokens` is the number of splice texts the caller passes to [`mutate`].
pub fn edit(tokens: usize) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), 1_usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 0..tokens).prop_map(|(i, t)| Edit::Splice(i, t)),
        (any::<usize>(), 1_usize..96).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edits` to `base` byte-wise (splicing `tokens`) and returns the text, lossily.
pub fn mutate(base: &str, edits: &[Edit], tokens: &[&str]) -> String {
    let mut b = base.as_bytes().to_vec();
    for e in edits {
        let at = |i: usize, b: &Vec<u8>| if b.is_empty() { 0 } else { i % (b.len() + 1) };
        match e {
            Edit::Flip(i, x) if !b.is_empty() => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Edit::Flip(..) => {}
            Edit::Delete(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Edit::Insert(i, bytes) => {
                let i = at(*i, &b);
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Splice(i, t) => {
                let i = at(*i, &b);
                b.splice(i..i, tokens[*t].bytes());
            }
            Edit::Duplicate(i, n) => {
                let i = at(*i, &b);
                let end = (i + n).min(b.len());
                let copy = b[i..end].to_vec();
                b.splice(end..end, copy);
            }
            Edit::Truncate(i) => {
                let i = at(*i, &b);
                b.truncate(i);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}
