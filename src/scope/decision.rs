use crate::event::Shared;

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
///
/// `required` is the route's own list, shared by every decision of the route, and `used` is
/// that same list when every required scope was granted: deciding the common case copies
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeDecision {
    /// The scopes the route declared.
    pub required: Shared<Vec<String>>,
    /// The granted scopes that satisfied the requirement.
    pub used: Shared<Vec<String>>,
    /// Required scopes the token lacked.
    pub missing: Vec<String>,
    /// Whether the requirement was met.
    pub satisfied: bool,
}

impl ScopeDecision {
    /// Decides `required` against the `granted` scopes.
    ///
    /// ```
    /// use oauth_audit::event::Shared;
    /// use oauth_audit::scope::{Match, ScopeDecision};
    ///
    /// let required = Shared::new(vec!["orders:read".to_string(), "orders:write".to_string()]);
    /// let granted = ["orders:read".to_string(), "profile".to_string()];
    /// let d = ScopeDecision::decide(&required, Match::Any, &granted);
    /// assert!(d.satisfied);
    /// assert_eq!(d.used, vec!["orders:read".to_string()]);
    /// assert_eq!(d.missing, ["orders:write"]);
    /// ```
    pub fn decide(
        required: &Shared<Vec<String>>,
        mode: Match,
        granted: &[String],
    ) -> ScopeDecision {
        let (used, missing) = if required.iter().all(|scope| granted.contains(scope)) {
            (required.clone(), Vec::new())
        } else {
            let (used, missing): (Vec<String>, Vec<String>) = required
                .iter()
                .cloned()
                .partition(|scope| granted.contains(scope));
            (Shared::own(used), missing)
        };
        let satisfied = match mode {
            Match::All => missing.is_empty(),
            Match::Any => !used.is_empty() || required.is_empty(),
        };
        ScopeDecision {
            required: required.clone(),
            used,
            missing,
            satisfied,
        }
    }

    /// The decision of a route that two [`RequiredScopes`](super::RequiredScopes) protect,
    /// this one around `inner` (a layer on a router and one on its route): the route
    /// required the scopes of both, and its requirement was met only when both were.
    pub(crate) fn and(self, inner: ScopeDecision) -> ScopeDecision {
        let satisfied = self.satisfied && inner.satisfied;
        if *self.required == *inner.required {
            return ScopeDecision { satisfied, ..self };
        }
        let union = |outer: Shared<Vec<String>>, inner: &[String]| {
            let mut all = outer.into_inner();
            for scope in inner {
                if !all.contains(scope) {
                    all.push(scope.clone());
                }
            }
            all
        };
        let missing = union(Shared::own(self.missing), &inner.missing);
        ScopeDecision {
            required: Shared::own(union(self.required, &inner.required)),
            used: Shared::own(union(self.used, &inner.used)),
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

    fn shared(s: &[&str]) -> Shared<Vec<String>> {
        Shared::new(v(s))
    }

    #[test]
    fn all_and_any() {
        let granted = v(&["a", "b"]);
        let d = ScopeDecision::decide(&shared(&["a", "b"]), Match::All, &granted);
        assert!(d.satisfied);
        assert_eq!(d.used, v(&["a", "b"]));
        let d = ScopeDecision::decide(&shared(&["a", "c"]), Match::All, &granted);
        assert!(!d.satisfied);
        assert_eq!((d.used.into_inner(), d.missing), (v(&["a"]), v(&["c"])));
        let d = ScopeDecision::decide(&shared(&["c", "d"]), Match::Any, &granted);
        assert!(!d.satisfied);
        assert!(d.used.is_empty());
        assert_eq!(d.missing, v(&["c", "d"]));
        let d = ScopeDecision::decide(&shared(&["a", "c"]), Match::Any, &granted);
        assert!(d.satisfied);
        assert!(ScopeDecision::decide(&shared(&[]), Match::All, &[]).satisfied);
        assert!(ScopeDecision::decide(&shared(&[]), Match::Any, &[]).satisfied);
    }

    #[test]
    fn two_decisions_of_one_route_combine() {
        let granted = v(&["api", "profile"]);
        let outer = ScopeDecision::decide(&shared(&["api"]), Match::All, &granted);
        let inner = ScopeDecision::decide(&shared(&["admin", "api"]), Match::All, &granted);
        let both = outer.clone().and(inner.clone());
        assert!(!both.satisfied);
        assert_eq!(both.required, v(&["api", "admin"]));
        assert_eq!(both.used, v(&["api"]));
        assert_eq!(both.missing, v(&["admin"]));
        // Whichever is around the other, one unmet requirement is an unmet route.
        assert!(!inner.and(outer.clone()).satisfied);
        let twice = outer.clone().and(outer.clone());
        assert!(twice.satisfied && twice.required.is_shared());
        assert_eq!(twice, outer);
    }

    #[test]
    fn a_met_requirement_shares_the_routes_list() {
        let required = shared(&["orders:read", "orders:write"]);
        let granted = v(&["profile", "orders:write", "orders:read"]);
        for mode in [Match::All, Match::Any] {
            let d = ScopeDecision::decide(&required, mode, &granted);
            assert!(d.satisfied);
            assert!(d.required.is_shared() && d.used.is_shared());
            assert_eq!(d.used, required);
            assert!(d.missing.is_empty());
        }
        // Partly granted: `used` is the decision's own list, the route's is untouched.
        let d = ScopeDecision::decide(&required, Match::Any, &v(&["orders:write"]));
        assert!(!d.used.is_shared());
        assert_eq!(d.used, v(&["orders:write"]));
        assert_eq!(d.missing, v(&["orders:read"]));
        assert_eq!(*required, v(&["orders:read", "orders:write"]));
    }
}
