//! Paths left alone (not audited, or passed by the proxy's route rules): exact paths and
//! prefixes, matched on every reading of a request's path.

use super::path::CanonicalPath;

/// A set of paths: `/health` names that path exactly, `/static/*` every path under
/// `/static/`. A request matches only when *every* reading of its path does
/// ([`CanonicalPath::readings`], dot segments resolved): `/static/../admin` or
/// `/health;x=1/../admin` are not `/static/*` or `/health` for a server that reads them
/// otherwise, so they are never skipped.
///
/// ```
/// use oauth_audit::request_target::SkipPaths;
///
/// let skip = SkipPaths::new(["/health", "/static/*"]).unwrap();
/// assert!(skip.matches("/health"));
/// assert!(skip.matches("/static/app.js"));
/// assert!(skip.matches("/static/./css/site.css"));
/// assert!(!skip.matches("/static"));
/// assert!(!skip.matches("/static/../admin"));
/// assert!(!skip.matches("/health/more"));
/// assert!(SkipPaths::new(["/a*b"]).is_err());
/// // Patterns are read as request paths are.
/// assert!(SkipPaths::new(["/files%20old/*"]).unwrap().matches("/files%20old/a"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct SkipPaths {
    exact: Vec<String>,
    /// Each with its trailing `/`.
    prefixes: Vec<String>,
}

/// A pattern as requests are compared: in its one reading (`/a%20b` is `/a b`, as the
/// request path `/a%20b` reads), refused when servers read it differently.
fn canonical(pattern: &str) -> Result<String, String> {
    let path = CanonicalPath::new(pattern);
    match path.ambiguity() {
        None => Ok(path.strict().to_owned()),
        Some(why) => Err(format!(
            "{pattern:?} reads differently on different servers ({}); write it as the server reads it",
            why.as_str()
        )),
    }
}

impl SkipPaths {
    /// The set of `patterns`; an error names one that does not start with `/` or has a `*`
    /// anywhere but in a final `/*`.
    pub fn new<I, S>(patterns: I) -> Result<SkipPaths, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = SkipPaths::default();
        for pattern in patterns {
            let pattern = pattern.as_ref();
            if !pattern.starts_with('/') {
                return Err(format!("{pattern:?} is not a path: paths start with '/'"));
            }
            match pattern.strip_suffix('*') {
                Some(prefix) if prefix.ends_with('/') && !prefix.contains('*') => {
                    let mut prefix = canonical(prefix)?;
                    if !prefix.ends_with('/') {
                        prefix.push('/');
                    }
                    set.prefixes.push(prefix)
                }
                None if !pattern.contains('*') => set.exact.push(canonical(pattern)?),
                _ => {
                    return Err(format!(
                        "{pattern:?}: a '*' may only end a pattern, as in \"/static/*\""
                    ))
                }
            }
        }
        Ok(set)
    }

    /// Whether there is no path in the set.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Whether `path` (a request's path, without query) is in the set, in every reading.
    pub fn matches(&self, path: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        // Most paths read the same everywhere: no escapes, parameters, dot segments or
        // backslashes; compared as they are, with no allocation.
        let plain = !path
            .bytes()
            .any(|b| matches!(b, b'%' | b';' | b'.' | b'\\'))
            && !path.contains("//");
        if plain {
            return self.one(path);
        }
        CanonicalPath::new(path)
            .readings()
            .all(|reading| self.one(reading))
    }

    fn one(&self, path: &str) -> bool {
        self.exact.iter().any(|p| p == path)
            || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}
