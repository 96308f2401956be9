//! The headers of a message as a dial plan reads them: (name, value)
//! pairs in order, kept in one text buffer.
//!
//! A view is built for every call, and most dial plans read two or three
//! of its dozen headers. One buffer plus one list of offsets is two
//! allocations where a list of string pairs was twenty-five, built and
//! freed again for each call (BENCHMARKS.md, "Lua dial plans").

use crate::validate::canonical_name;

/// Headers in order, looked up without regard to case (compact forms
/// such as `f` find `From`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderList {
    text: String,
    /// Per header: where its name ends and where its value ends in `text`
    /// (the name starts where the previous value ended).
    ends: Vec<(u32, u32)>,
}

impl HeaderList {
    /// An empty list with room for `headers` headers of `bytes` in all.
    pub fn with_capacity(headers: usize, bytes: usize) -> HeaderList {
        HeaderList {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(headers),
        }
    }

    /// Appends a header. A list never holds more than 4 GiB of text: a
    /// header past that is dropped (no SIP message comes near it).
    pub fn push(&mut self, name: &str, value: &str) {
        let total = self.text.len() + name.len() + value.len();
        if u32::try_from(total).is_err() {
            return;
        }
        self.text.push_str(name);
        let name_end = self.text.len() as u32;
        self.text.push_str(value);
        self.ends.push((name_end, self.text.len() as u32));
    }

    /// A list from raw (name, value) bytes, as a parser holds them. The
    /// text is checked as UTF-8 once for the whole list, not per header
    /// (a view is built for every call); a list that is not UTF-8 gets
    /// replacement characters where it is not, header by header.
    pub fn from_bytes<'a, I>(headers: I) -> HeaderList
    where
        I: Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    {
        let (count, bytes) = headers
            .clone()
            .fold((0, 0), |(c, b), (n, v)| (c + 1, b + n.len() + v.len()));
        if u32::try_from(bytes).is_err() {
            return HeaderList::lossy(headers);
        }
        let mut text = Vec::with_capacity(bytes);
        let mut ends = Vec::with_capacity(count);
        for (n, v) in headers.clone() {
            text.extend_from_slice(n);
            let name_end = text.len() as u32;
            text.extend_from_slice(v);
            ends.push((name_end, text.len() as u32));
        }
        match String::from_utf8(text) {
            // Each piece must be UTF-8 on its own, not just the whole.
            Ok(text)
                if ends.iter().all(|&(n, v)| {
                    text.is_char_boundary(n as usize) && text.is_char_boundary(v as usize)
                }) =>
            {
                HeaderList { text, ends }
            }
            _ => HeaderList::lossy(headers),
        }
    }

    /// A list from raw bytes, each piece converted on its own.
    fn lossy<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> HeaderList {
        let mut list = HeaderList::default();
        for (n, v) in headers {
            list.push(&String::from_utf8_lossy(n), &String::from_utf8_lossy(v));
        }
        list
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        (0..self.ends.len()).map(|i| self.get(i))
    }

    /// Header `i` (in bounds).
    fn get(&self, i: usize) -> (&str, &str) {
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1].1 as usize,
        };
        let (name_end, value_end) = self.ends[i];
        (
            &self.text[start..name_end as usize],
            &self.text[name_end as usize..value_end as usize],
        )
    }

    /// The values of header `name`, in order.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.named(name).map(|i| self.get(i).1).collect()
    }

    /// The first value of header `name`.
    pub fn first(&self, name: &str) -> Option<&str> {
        self.named(name).next().map(|i| self.get(i).1)
    }

    /// The indexes of the headers named `name` (any case, compact forms
    /// too). Names are compared as bytes, length first: a lookup passes a
    /// dozen headers, and slicing each as `str` cost more than the compare.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        let want = canonical_name(name).as_bytes();
        let text = self.text.as_bytes();
        let mut start = 0;
        self.ends
            .iter()
            .enumerate()
            .filter_map(move |(i, &(name_end, value_end))| {
                let from = start;
                start = value_end as usize;
                let n = text.get(from..name_end as usize)?;
                (n.len() == want.len() && n.eq_ignore_ascii_case(want)).then_some(i)
            })
    }

    /// Removes every header named `name` (any case).
    pub fn remove(&mut self, name: &str) {
        if self.named(name).next().is_none() {
            return;
        }
        let name = canonical_name(name);
        let mut kept = HeaderList::with_capacity(self.len(), self.text.len());
        for (n, v) in self.iter().filter(|(n, _)| !n.eq_ignore_ascii_case(name)) {
            kept.push(n, v);
        }
        *self = kept;
    }
}

impl std::fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for HeaderList {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> HeaderList {
        let mut list = HeaderList::default();
        for (n, v) in iter {
            list.push(n.as_ref(), v.as_ref());
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_finds_and_removes() {
        let mut h: HeaderList = [("Via", "a"), ("From", "<sip:x@y>"), ("X-Foo", "1")]
            .into_iter()
            .collect();
        h.push("x-foo", "2");
        h.push("Empty", "");
        assert_eq!(h.len(), 5);
        assert_eq!(h.first("f"), Some("<sip:x@y>"));
        assert_eq!(h.first("X-FOO"), Some("1"));
        assert_eq!(h.values("X-Foo"), ["1", "2"]);
        assert_eq!(h.first("Empty"), Some(""));
        assert_eq!(h.first("Missing"), None);
        h.remove("X-Foo");
        let all: Vec<_> = h.iter().collect();
        assert_eq!(all, [("Via", "a"), ("From", "<sip:x@y>"), ("Empty", "")]);
        h.remove("Nothing");
        assert_eq!(h.len(), 3);
        assert!(HeaderList::default().is_empty());
    }

    #[test]
    fn from_bytes_checks_each_piece() {
        let raw: [(&[u8], &[u8]); 2] = [
            (b"Via", b"SIP/2.0/UDP h"),
            (b"X-Name", "J\u{f6}rg".as_bytes()),
        ];
        let list = HeaderList::from_bytes(raw.iter().copied());
        assert_eq!(list.first("x-name"), Some("J\u{f6}rg"));
        assert_eq!(list.len(), 2);
        // Valid as a whole, not per piece: the name ends inside a character.
        let split: [(&[u8], &[u8]); 1] = [(b"X-\xc3", b"\xb6")];
        let list = HeaderList::from_bytes(split.iter().copied());
        assert_eq!(list.iter().next(), Some(("X-\u{fffd}", "\u{fffd}")));
        let bad: [(&[u8], &[u8]); 1] = [(b"X-A", b"a\xffb")];
        let list = HeaderList::from_bytes(bad.iter().copied());
        assert_eq!(list.first("X-A"), Some("a\u{fffd}b"));
    }
}
