//! The agent's report line (`ts=... status=OK user=alice action=... key=value ...
//! msg="..."`, written by `Outcome::logfmt`), parsed into its fields, so that a test
//! asserts on `status`, `reason`, `action`, a fact or the message instead of on
//! substrings of the line. A line that does not parse fails the test: a test never
//! passes because a line it cannot read did not say what it forbids.

use std::fmt;

#[derive(Clone, Debug)]
pub struct Report {
    line: String,
    /// Every `key=value` pair after `ts=`, in order, values unquoted.
    pairs: Vec<(String, String)>,
}

/// The keys every line carries or that have their own accessor; the rest are facts.
const FIELDS: [&str; 6] = ["ts", "status", "user", "reason", "action", "msg"];

impl Report {
    /// Parses one line; an error says where it stops being logfmt.
    pub fn parse(line: &str) -> Result<Report, String> {
        let pairs = pairs(line)?;
        match pairs.first() {
            Some((k, _)) if k == "ts" => {}
            _ => return Err(format!("not a report line (no ts= first): {line}")),
        }
        let report = Report { line: line.to_string(), pairs };
        for key in ["status", "user"] {
            report.get(key).ok_or_else(|| format!("a report line without {key}=: {line}"))?;
        }
        Ok(report)
    }

    /// [`Report::parse`], failing the test on a line that is not a report line.
    pub fn of(line: &str) -> Report {
        Report::parse(line).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The line as the agent wrote it.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// `OK`, `DEGRADED` or `FAIL`.
    pub fn status(&self) -> &str {
        self.get("status").unwrap_or_default()
    }

    pub fn user(&self) -> &str {
        self.get("user").unwrap_or_default()
    }

    pub fn reason(&self) -> Option<&str> {
        self.get("reason")
    }

    pub fn action(&self) -> Option<&str> {
        self.get("action")
    }

    /// The sentence for the person reading the log; empty when there is none.
    pub fn msg(&self) -> &str {
        self.get("msg").unwrap_or_default()
    }

    /// The value of a fact (any key but ts, status, user, reason, action and msg).
    pub fn fact(&self, key: &str) -> Option<&str> {
        assert!(!FIELDS.contains(&key), "{key} has its own accessor");
        self.get(key)
    }

    /// Every key, in the order of the line.
    pub fn keys(&self) -> Vec<&str> {
        self.pairs.iter().map(|(k, _)| k.as_str()).collect()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// `key=value` pairs separated by single spaces; a value is bare, or quoted with `\"`,
/// `\\` and `\n` escaped (what the agent's `value()` writes).
fn pairs(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| format!("a word without `=` in: {line}"))?;
        if key.is_empty() || key.contains([' ', '"']) {
            return Err(format!("a bad key {key:?} in: {line}"));
        }
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted).ok_or_else(|| format!("an unterminated quote after {key}= in: {line}"))?,
            None => {
                let end = after.find(' ').unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            }
        };
        if out.iter().any(|(k, _): &(String, String)| k == key) {
            return Err(format!("{key} twice in: {line}"));
        }
        out.push((key.to_string(), value));
        rest = match after.strip_prefix(' ') {
            Some(r) => r,
            None if after.is_empty() => "",
            None => return Err(format!("no space after {key}= in: {line}")),
        };
    }
    Ok(out)
}

/// The value of a quoted string whose opening quote is gone, and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

mod tests {
    use super::Report;

    #[test]
    fn a_report_line_parses_into_its_fields() {
        let r = Report::of(
            r#"ts=2027-01-15T08:00:00Z status=FAIL user=alice reason=vault_token_drift action=verified token_ttl=1h note="a=b \"c\" \\ d" msg="meta os_user is \"bob\"""#,
        );
        assert_eq!(
            (r.status(), r.user(), r.reason(), r.action()),
            ("FAIL", "alice", Some("vault_token_drift"), Some("verified"))
        );
        assert_eq!((r.fact("token_ttl"), r.fact("note"), r.fact("absent")), (Some("1h"), Some("a=b \"c\" \\ d"), None));
        assert_eq!(r.msg(), "meta os_user is \"bob\"");
        assert_eq!(r.keys(), ["ts", "status", "user", "reason", "action", "token_ttl", "note", "msg"]);
        let ok = Report::of("ts=x status=OK user=bob");
        assert_eq!((ok.reason(), ok.action(), ok.msg()), (None, None, ""));
    }

    #[test]
    fn what_is_not_a_report_line_is_refused() {
        for bad in [
            "claude-auth-sync: warning: x",
            "status=OK user=a",
            "ts=x status=OK",
            "ts=x status=OK user=a msg=\"open",
            "ts=x status=OK user=a  action=b",
            "ts=x status=OK user=a status=FAIL",
        ] {
            assert!(Report::parse(bad).is_err(), "{bad}");
        }
    }
}
