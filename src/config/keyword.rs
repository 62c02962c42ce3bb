//! The words a config writes for an enum's values (`lock = "flock"`, `journald = true`):
//! one table per enum, which the parser reads a word with and the printer writes the
//! value with, so a word can never be accepted but printed differently, and the words an
//! error offers are the table's own.
//!
//! It must never hold anything but fixed words: no value from a config file passes
//! through here into a message.

/// One enum's words. The first word of a value is the one printed; later words for the
/// same value are other spellings the parser accepts (`on` for `true`).
pub(crate) struct Keywords<T: 'static> {
    words: &'static [(&'static str, T)],
    listing: Listing,
}

/// How an error lists the words: `one of: a, b, c`, or `"a" or "b"`.
#[derive(Clone, Copy)]
enum Listing {
    OneOf,
    Either,
}

impl<T: Copy + PartialEq> Keywords<T> {
    /// Errors say `must be one of: a, b, c`.
    pub(crate) const fn one_of(words: &'static [(&'static str, T)]) -> Self {
        Keywords { words, listing: Listing::OneOf }
    }

    /// Errors say `must be "a" or "b"` (a `true` or `false` word shown as a bare bool).
    pub(crate) const fn either(words: &'static [(&'static str, T)]) -> Self {
        Keywords { words, listing: Listing::Either }
    }

    pub(crate) fn parse(&self, word: &str) -> Option<T> {
        self.words.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }

    /// The word printed for `value`.
    pub(crate) fn word(&self, value: T) -> &'static str {
        self.words.iter().find(|(_, v)| *v == value).map(|(w, _)| *w).expect("every value of a keyword enum has a word")
    }

    /// Whether the words include `true`/`false`, which a config may write as bare bools.
    pub(crate) fn takes_bool(&self) -> bool {
        self.words.iter().any(|(w, _)| is_bool(w))
    }

    /// What a word must be, for an error about a word not in the table.
    pub(crate) fn problem(&self) -> String {
        let printed: Vec<&str> = self.words.iter().filter(|(w, v)| self.word(*v) == *w).map(|(w, _)| *w).collect();
        match self.listing {
            Listing::OneOf => format!("must be one of: {}", printed.join(", ")),
            Listing::Either => format!(
                "must be {}",
                either(printed.iter().map(|w| if is_bool(w) { w.to_string() } else { format!("\"{w}\"") }))
            ),
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn either(items: impl IntoIterator<Item = String>) -> String {
    let mut items: Vec<String> = items.into_iter().collect();
    match items.pop() {
        None => String::new(),
        Some(last) if items.is_empty() => last,
        Some(last) => format!("{} or {last}", items.join(", ")),
    }
}

/// A word that HCL writes as a bool.
pub(crate) fn is_bool(word: &str) -> bool {
    matches!(word, "true" | "false")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Switch {
        Auto,
        On,
        Off,
    }
    const SWITCH: Keywords<Switch> =
        Keywords::either(&[("auto", Switch::Auto), ("true", Switch::On), ("false", Switch::Off), ("on", Switch::On)]);

    #[test]
    fn the_first_word_is_printed_and_every_word_parses() {
        assert_eq!(SWITCH.parse("on"), Some(Switch::On));
        assert_eq!(SWITCH.parse("true"), Some(Switch::On));
        assert_eq!(SWITCH.parse("yes"), None);
        for v in [Switch::Auto, Switch::On, Switch::Off] {
            assert_eq!(SWITCH.parse(SWITCH.word(v)), Some(v));
        }
        assert_eq!(SWITCH.word(Switch::On), "true");
        assert!(SWITCH.takes_bool());
    }

    #[test]
    fn errors_list_the_printed_words() {
        assert_eq!(SWITCH.problem(), "must be \"auto\", true or false");
        let two = Keywords::either(&[("warn", 1), ("fail", 2)]);
        assert_eq!(two.problem(), "must be \"warn\" or \"fail\"");
        let three = Keywords::one_of(&[("a", 1), ("b", 2), ("c", 3)]);
        assert_eq!(three.problem(), "must be one of: a, b, c");
        assert!(!three.takes_bool());
    }
}
