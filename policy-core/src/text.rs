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

/// Levenshtein distance over lowercase characters, `O(a*b)`: the reference the banded
/// [`edit_distance_within`] is tested against.
#[cfg(test)]
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

/// "Did you mean" works on names of at most this many characters: a longer name is
/// not a typo of a short one, and comparing it would cost time for nothing.
pub const SUGGEST_MAX_CHARS: usize = 64;
/// At most this many candidates are compared with one name (the first ones given).
pub const SUGGEST_MAX_CANDIDATES: usize = 256;
/// A suggestion is at most this many edits away (less for short names).
pub const SUGGEST_MAX_EDITS: usize = 3;

fn lower_chars(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Levenshtein distance over lowercase characters when it is at most `max`, else
/// `None`. Banded: `O(len * max)` work, whatever the strings.
#[cfg(test)]
pub fn edit_distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    banded(&lower_chars(a), &lower_chars(b), max)
}

fn banded(a: &[char], b: &[char], max: usize) -> Option<usize> {
    let (n, m) = (a.len(), b.len());
    if n.abs_diff(m) > max {
        return None;
    }
    let inf = max.saturating_add(1);
    let mut prev: Vec<usize> = (0..=m).map(|j| if j <= max { j } else { inf }).collect();
    let mut cur = alloc::vec![inf; m + 1];
    for (i, ca) in a.iter().enumerate() {
        let i = i + 1;
        let lo = i.saturating_sub(max).max(1);
        let hi = i.saturating_add(max).min(m);
        if let Some(first) = cur.first_mut() {
            *first = if i <= max { i } else { inf };
        }
        if lo > 1 {
            if let Some(slot) = cur.get_mut(lo - 1) {
                *slot = inf;
            }
        }
        let mut row_min = cur.first().copied().unwrap_or(inf);
        for j in lo..=hi {
            let cb = b.get(j - 1);
            let sub = prev.get(j - 1).copied().unwrap_or(inf) + usize::from(Some(ca) != cb);
            let del = prev.get(j).copied().unwrap_or(inf) + 1;
            let ins = cur.get(j - 1).copied().unwrap_or(inf) + 1;
            let v = sub.min(del).min(ins).min(inf);
            if let Some(slot) = cur.get_mut(j) {
                *slot = v;
            }
            row_min = row_min.min(v);
        }
        if let Some(slot) = cur.get_mut(hi + 1) {
            *slot = inf;
        }
        if row_min > max {
            return None;
        }
        core::mem::swap(&mut prev, &mut cur);
    }
    prev.get(m).copied().filter(|d| *d <= max)
}

/// The candidate closest to `name`, if it is close enough to be a plausible typo
/// (distance at most a third of the longer name, at least 1 and at most
/// [`SUGGEST_MAX_EDITS`]), or a truncated or extended form of it (`lattitude` for
/// `lat`).
///
/// Bounded work whatever the input: `None` for a name longer than
/// [`SUGGEST_MAX_CHARS`]; candidates that long are skipped; only the first
/// [`SUGGEST_MAX_CANDIDATES`] candidates are looked at; only those within the edit
/// limit in length are compared, with a banded edit distance.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Four bytes per character at most: a cheap first bound before counting.
    if name.len() > SUGGEST_MAX_CHARS * 4 {
        return None;
    }
    let a = lower_chars(name);
    if a.len() > SUGGEST_MAX_CHARS || a.is_empty() {
        return None;
    }
    let mut best: Option<(usize, &'a str)> = None;
    let mut prefix: Option<&'a str> = None;
    let mut b: Vec<char> = Vec::with_capacity(SUGGEST_MAX_CHARS * 2);
    for c in candidates.into_iter().take(SUGGEST_MAX_CANDIDATES) {
        if c.len() > SUGGEST_MAX_CHARS * 4 {
            continue;
        }
        b.clear();
        b.extend(c.chars().flat_map(char::to_lowercase));
        if b.len() > SUGGEST_MAX_CHARS {
            continue;
        }
        if prefix.is_none() && related_by_prefix(&a, &b) {
            prefix = Some(c);
        }
        let limit = (a.len().max(b.len()) / 3).clamp(1, SUGGEST_MAX_EDITS);
        let limit = match best {
            // Only a strictly closer candidate can win.
            Some((bd, _)) => limit.min(bd.saturating_sub(1)),
            None => limit,
        };
        if let Some(d) = banded(&a, &b, limit) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c).or(prefix)
}

/// One is a prefix of the other, both of three characters or more.
fn related_by_prefix(a: &[char], b: &[char]) -> bool {
    a.len() >= 3 && b.len() >= 3 && (a.starts_with(b) || b.starts_with(a))
}

/// At most this many characters of a value are quoted back in a message.
pub const SHOWN_MAX_CHARS: usize = 80;

/// `value` as a message quotes it: whole when short, else its first
/// [`SHOWN_MAX_CHARS`] characters, then `…` and its length in bytes.
pub fn shown(value: &str) -> alloc::borrow::Cow<'_, str> {
    match value.char_indices().nth(SHOWN_MAX_CHARS) {
        None => alloc::borrow::Cow::Borrowed(value),
        Some((cut, _)) => alloc::borrow::Cow::Owned(alloc::format!(
            "{}… ({} bytes)",
            value.get(..cut).unwrap_or(""),
            value.len()
        )),
    }
}

/// At most `max` of `names`, joined with `, `, then how many were left out.
pub fn some_names(names: &[&str], max: usize) -> String {
    let mut out = String::new();
    for (i, n) in names.iter().take(max).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&shown(n));
    }
    if names.len() > max {
        out.push_str(&alloc::format!(" and {} more", names.len() - max));
    }
    out
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
    fn banded_distance_agrees_with_the_full_one() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let word = |x: &mut u64| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            let len = (*x % 9) as usize;
            (0..len)
                .map(|i| char::from(b"abcAB"[((*x >> (i * 3)) % 5) as usize]))
                .collect::<String>()
        };
        for _ in 0..5000 {
            let (a, b) = (word(&mut x), word(&mut x));
            let full = edit_distance(&a, &b);
            for max in 0..5 {
                let want = (full <= max).then_some(full);
                assert_eq!(edit_distance_within(&a, &b, max), want, "{a:?} {b:?} {max}");
            }
        }
    }

    #[test]
    fn closest_is_bounded() {
        // Over-long names get no suggestion, however close a candidate is.
        let long = "e".repeat(SUGGEST_MAX_CHARS + 1);
        let near = "e".repeat(SUGGEST_MAX_CHARS);
        assert_eq!(closest(&long, [near.as_str()]), None);
        assert_eq!(closest(&"x".repeat(100_000_000), ["xx"]), None);
        // Over-long candidates are skipped.
        assert_eq!(closest(&near, [long.as_str()]), None);
        // Only the first SUGGEST_MAX_CANDIDATES candidates are looked at.
        let mut many: Vec<String> = (0..SUGGEST_MAX_CANDIDATES)
            .map(|i| alloc::format!("zzzzzzzz{i}"))
            .collect();
        many.push(String::from("washington"));
        assert_eq!(closest("washingtn", many.iter().map(String::as_str)), None);
        many.truncate(10);
        many.push(String::from("washington"));
        assert_eq!(
            closest("washingtn", many.iter().map(String::as_str)),
            Some("washington")
        );
        // At most SUGGEST_MAX_EDITS edits, however long the names.
        let a = "abcdefghijklmnopqrstuvwxyz0123";
        let b = "abcdefghijklmnopqrstuvwxyz4567";
        assert_eq!(closest(a, [b]), None);
        assert_eq!(
            closest(a, ["abcdefghijklmnopqrstuvwxyz0456"]),
            Some("abcdefghijklmnopqrstuvwxyz0456")
        );
        // Every location name and alias is looked at.
        assert!(crate::locations::names().count() <= SUGGEST_MAX_CANDIDATES);
        // Truncated or extended words still suggest.
        assert_eq!(closest("lattitude", ["lon", "lat"]), Some("lat"));
    }

    #[test]
    fn shown_values_are_cut() {
        assert_eq!(shown("short"), "short");
        let s = shown(&"é".repeat(1000)).into_owned();
        assert!(s.ends_with("… (2000 bytes)"), "{s}");
        assert_eq!(
            s.chars().count(),
            SHOWN_MAX_CHARS + "… (2000 bytes)".len() - 2
        );
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
