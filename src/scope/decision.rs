/// How a route's required scopes combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// Every required scope must be granted.
    All,
    /// At least one required scope must be granted.
    Any,
}

/// What a [`RequiredScopes`](super::RequiredScopes) layer decided for one request.
///
/// It travels to the audit layer in the response's extensions (and is removed there, so the
/// response reaches the client as the handler produced it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeDecision {
    /// The scopes the route declared.
    pub required: Vec<String>,
    /// The granted scopes that satisfied the requirement.
    pub used: Vec<String>,
    /// Required scopes the token lacked.
    pub missing: Vec<String>,
    /// Whether the requirement was met.
    pub satisfied: bool,
}

impl ScopeDecision {
    /// Decides `required` against the `granted` scopes.
    ///
    /// ```
    /// use oauth_audit::scope::{Match, ScopeDecision};
    ///
    /// let granted = ["orders:read".to_string(), "profile".to_string()];
    /// let d = ScopeDecision::decide(&["orders:read".into(), "orders:write".into()], Match::Any, &granted);
    /// assert!(d.satisfied);
    /// assert_eq!(d.used, ["orders:read"]);
    /// assert_eq!(d.missing, ["orders:write"]);
    /// ```
    pub fn decide(required: &[String], mode: Match, granted: &[String]) -> ScopeDecision {
        let (used, missing): (Vec<String>, Vec<String>) = required
            .iter()
            .cloned()
            .partition(|scope| granted.contains(scope));
        let satisfied = match mode {
            Match::All => missing.is_empty(),
            Match::Any => !used.is_empty() || required.is_empty(),
        };
        ScopeDecision {
            required: required.to_vec(),
            used,
            missing,
            satisfied,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn all_and_any() {
        let granted = v(&["a", "b"]);
        let d = ScopeDecision::decide(&v(&["a", "b"]), Match::All, &granted);
        assert!(d.satisfied);
        assert_eq!(d.used, v(&["a", "b"]));
        let d = ScopeDecision::decide(&v(&["a", "c"]), Match::All, &granted);
        assert!(!d.satisfied);
        assert_eq!((d.used, d.missing), (v(&["a"]), v(&["c"])));
        let d = ScopeDecision::decide(&v(&["c", "d"]), Match::Any, &granted);
        assert!(!d.satisfied);
        assert!(ScopeDecision::decide(&[], Match::All, &[]).satisfied);
    }
}
