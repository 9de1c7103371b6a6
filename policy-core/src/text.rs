//! Small text helpers: JSON Pointer building, "did you mean" suggestions, and mapping
//! a JSON Pointer back to a line and column of the source text.
//!
//! Invariants: nothing here panics on any input; [`locate`] scans iteratively (no
//! recursion), so a deeply nested document cannot exhaust the stack.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// Appends one reference token to a JSON Pointer, escaping `~` and `/` (RFC 6901).
pub fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `base` followed by the given tokens.
pub fn pointer(base: &str, tokens: &[&str]) -> String {
    let mut p = String::from(base);
    for t in tokens {
        push_token(&mut p, t);
    }
    p
}

/// Levenshtein distance over lowercase characters, bounded work (`O(a*b)`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = alloc::vec![0usize; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = sub.min(del).min(ins);
            }
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo
/// (distance at most a third of the longer name, and at least 1 edit allowed).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    // A truncated or extended word (`lattitude` for `lat`) is a plausible typo too.
    let lower = name.to_ascii_lowercase();
    if let Some(c) = candidates_prefix(&lower, c) {
        return Some(c);
    }
    let limit = (name.chars().count().max(c.chars().count()) / 3).max(1);
    (d <= limit).then_some(c)
}

fn candidates_prefix<'a>(lower: &str, best: &'a str) -> Option<&'a str> {
    let b = best.to_ascii_lowercase();
    (b.len() >= 3 && lower.len() >= 3 && (lower.starts_with(&b) || b.starts_with(lower)))
        .then_some(best)
}

/// 1-based line and column (in characters) of byte offset `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let mut line = 1u32;
    let mut col = 1u32;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            col = 1;
        } else {
            col = col.saturating_add(1);
        }
    }
    (line, col)
}

/// [`line_col`] of many offsets at once, in one pass over the text.
pub fn line_cols(
    text: &str,
    offsets: impl IntoIterator<Item = usize>,
) -> BTreeMap<usize, (u32, u32)> {
    let mut wanted: Vec<usize> = offsets.into_iter().collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = BTreeMap::new();
    let mut next = wanted.iter().copied().peekable();
    let (mut line, mut col) = (1u32, 1u32);
    for (i, c) in text.char_indices() {
        while next.peek().is_some_and(|&o| o <= i) {
            if let Some(o) = next.next() {
                out.insert(o, (line, col));
            }
        }
        if next.peek().is_none() {
            break;
        }
        if c == '\n' {
            line = line.saturating_add(1);
            col = 1;
        } else {
            col = col.saturating_add(1);
        }
    }
    for o in next {
        out.insert(o, (line, col));
    }
    out
}

enum Frame {
    Object { key: Option<String> },
    Array { index: usize },
}

/// Finds the byte offset of each JSON Pointer in `targets` within `text`: for an object
/// member, the position of its key; for an array element, of its value; `""` is 0.
/// One pass over the text whatever the number of targets; pointers that name nothing
/// are absent from the result. Malformed text yields whatever was found before the
/// damage.
pub fn locate(text: &str, targets: &[&str]) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    if targets.is_empty() {
        return found;
    }
    let wanted: alloc::collections::BTreeSet<&str> = targets.iter().copied().collect();
    let max_depth = targets
        .iter()
        .map(|t| t.matches('/').count())
        .max()
        .unwrap_or(0);
    if wanted.contains("") {
        found.insert(String::new(), 0);
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    // The pointer of the current container, with the lengths to truncate back to.
    let mut path = String::new();
    let mut path_lens: Vec<usize> = Vec::new();
    let mut expecting_key = false;
    let mut i = 0usize;
    // Records the position of a value about to start (array element).
    let on_value =
        |stack: &mut [Frame], path: &String, found: &mut BTreeMap<String, usize>, at: usize| {
            let depth = stack.len();
            if let Some(Frame::Array { index }) = stack.last_mut() {
                if depth <= max_depth {
                    let mut p = path.clone();
                    push_token(&mut p, &alloc::format!("{index}"));
                    if wanted.contains(p.as_str()) {
                        found.entry(p).or_insert(at);
                    }
                }
            }
        };
    while let Some(&b) = bytes.get(i) {
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b':' => i += 1,
            b',' => {
                match stack.last_mut() {
                    Some(Frame::Array { index }) => *index += 1,
                    Some(Frame::Object { .. }) => expecting_key = true,
                    None => {}
                }
                i += 1;
            }
            b'{' | b'[' => {
                on_value(&mut stack, &path, &mut found, i);
                // Descend: the current member/element becomes part of the path.
                path_lens.push(path.len());
                match stack.last() {
                    Some(Frame::Array { index }) => {
                        push_token(&mut path, &alloc::format!("{index}"))
                    }
                    Some(Frame::Object { key: Some(k) }) => {
                        let k = k.clone();
                        push_token(&mut path, &k)
                    }
                    _ => {}
                }
                if b == b'{' {
                    stack.push(Frame::Object { key: None });
                    expecting_key = true;
                } else {
                    stack.push(Frame::Array { index: 0 });
                    expecting_key = false;
                }
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                if let Some(len) = path_lens.pop() {
                    path.truncate(len);
                }
                expecting_key = false;
                i += 1;
            }
            b'"' => {
                let start = i;
                // Scan the string, honouring escapes.
                let mut j = i + 1;
                let mut raw_end = None;
                while let Some(&c) = bytes.get(j) {
                    match c {
                        b'\\' => j += 2,
                        b'"' => {
                            raw_end = Some(j);
                            break;
                        }
                        _ => j += 1,
                    }
                }
                let Some(end) = raw_end else { break };
                if expecting_key {
                    let raw = text.get(start + 1..end).unwrap_or("");
                    let key: String =
                        serde_json::from_str::<String>(text.get(start..=end).unwrap_or("\"\""))
                            .unwrap_or_else(|_| String::from(raw));
                    if stack.len() <= max_depth {
                        let mut p = path.clone();
                        push_token(&mut p, &key);
                        if wanted.contains(p.as_str()) {
                            found.entry(p).or_insert(start);
                        }
                    }
                    if let Some(Frame::Object { key: slot }) = stack.last_mut() {
                        *slot = Some(key);
                    }
                    expecting_key = false;
                } else {
                    on_value(&mut stack, &path, &mut found, start);
                }
                i = end + 1;
            }
            _ => {
                // A scalar: number, true, false, null (or garbage).
                on_value(&mut stack, &path, &mut found, i);
                while let Some(&c) = bytes.get(i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    i += 1;
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_tilde_and_slash() {
        assert_eq!(pointer("", &["a/b", "c~d", "0"]), "/a~1b/c~0d/0");
    }

    #[test]
    fn closest_finds_typos_and_refuses_strangers() {
        let names = ["Washington", "Oregon", "Texas"];
        assert_eq!(closest("Washingtn", names), Some("Washington"));
        assert_eq!(closest("washington", names), Some("Washington"));
        assert_eq!(closest("Zzzzzzzz", names), None);
    }

    #[test]
    fn locate_finds_keys_and_elements() {
        let text = "{\n  \"a\": [1, {\"b\": 2}],\n  \"c\": \"x\"\n}";
        let got = locate(text, &["/a", "/a/1", "/a/1/b", "/c", "/nope"]);
        assert_eq!(line_col(text, got["/a"]), (2, 3));
        assert_eq!(line_col(text, got["/a/1"]), (2, 12));
        assert_eq!(line_col(text, got["/a/1/b"]), (2, 13));
        assert_eq!(line_col(text, got["/c"]), (3, 3));
        assert!(!got.contains_key("/nope"));
    }

    #[test]
    fn locate_survives_deep_nesting_and_garbage() {
        let deep = "[".repeat(100_000);
        assert!(locate(&deep, &["/0/0"]).contains_key("/0/0"));
        let _ = locate("{\"a\": \"unterminated", &["/a"]);
        let _ = locate("}}]]", &["/a"]);
    }
}
