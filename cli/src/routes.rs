//! Protected route patterns and the scopes they require.
//!
//! A proxy has no router, so routes are declared as path patterns: `/api/orders` (exact),
//! `/api/orders/{id}` (one segment each `{...}`), `/admin/*` (the prefix and everything below
//! it). The first rule that matches a request (pattern and, when given, method) decides; its
//! [`RequiredScopes`] layer makes the same decision as on an Axum route.

use http::Method;
use oauth_audit::RequiredScopes;

/// A path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutePattern {
    segments: Vec<Segment>,
    prefix: bool,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

impl RoutePattern {
    /// Parses a pattern; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "{text:?} is not a path pattern: patterns start with '/'"
            ));
        };
        let (rest, prefix) = match rest.strip_suffix('*') {
            Some(rest) if rest.is_empty() || rest.ends_with('/') => {
                (rest.trim_end_matches('/'), true)
            }
            Some(_) => {
                return Err(format!(
                    "{text:?}: '*' stands only for a whole last segment, as in \"/admin/*\""
                ))
            }
            None => (rest, false),
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            for segment in rest.split('/') {
                if segment.starts_with('{') && segment.ends_with('}') && segment.len() > 2 {
                    segments.push(Segment::Param);
                } else if segment.contains(['{', '}', '*']) {
                    return Err(format!(
                        "{text:?}: segment {segment:?} mixes text and a placeholder; write a whole segment as {{name}}"
                    ));
                } else {
                    segments.push(Segment::Literal(segment.to_owned()));
                }
            }
        }
        Ok(RoutePattern {
            segments,
            prefix,
            text: text.to_owned(),
        })
    }

    /// Whether `path` (without query) matches.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        let mut parts = if path.is_empty() {
            Vec::new()
        } else {
            path.split('/').collect::<Vec<_>>()
        };
        if self.prefix {
            if parts.len() < self.segments.len() {
                return false;
            }
            parts.truncate(self.segments.len());
        } else if parts.len() != self.segments.len() {
            return false;
        }
        self.segments
            .iter()
            .zip(parts)
            .all(|(segment, part)| match segment {
                Segment::Literal(literal) => literal == part,
                Segment::Param => !part.is_empty(),
            })
    }
}

/// One protected route: pattern, methods (all when empty) and its scope requirement.
#[derive(Clone, Debug)]
pub struct ScopeRule {
    /// Which paths.
    pub pattern: RoutePattern,
    /// Which methods; every method when empty.
    pub methods: Vec<Method>,
    /// The requirement.
    pub scopes: RequiredScopes,
}

/// The protected routes, first match wins.
#[derive(Clone, Debug, Default)]
pub struct ScopeRules {
    rules: Vec<ScopeRule>,
}

impl ScopeRules {
    /// The rules in order.
    pub fn new(rules: Vec<ScopeRule>) -> Self {
        ScopeRules { rules }
    }

    /// How many rules there are.
    pub fn count(&self) -> usize {
        self.rules.len()
    }

    /// The first rule for `method` and `path`.
    ///
    /// The path is matched in its canonical form (see [`canonical_path`]), so spellings an
    /// upstream may take for the same resource (`//admin`, `/./admin`, `/%61dmin`,
    /// `/admin/`) cannot slip past a rule; the request itself is forwarded as it came. A rule
    /// for `GET` also covers `HEAD`, as on an Axum route.
    pub fn find(&self, method: &Method, path: &str) -> Option<&ScopeRule> {
        let path = canonical_path(path);
        self.rules.iter().find(|rule| {
            let method_matches = rule.methods.is_empty()
                || rule.methods.contains(method)
                || (method == Method::HEAD && rule.methods.contains(&Method::GET));
            method_matches && rule.pattern.matches(&path)
        })
    }
}

/// `path` as a rule sees it (RFC 3986 §6.2.2): escaped unreserved characters decoded, dot
/// segments resolved, empty segments and a trailing slash dropped. Other escapes (`%2F`)
/// stay as they are.
pub fn canonical_path(path: &str) -> String {
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    format!("/{}", segments.join("/"))
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|byte| byte.is_ascii_alphanumeric() || b"-._~".contains(byte));
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exact_params_and_prefixes() {
        let p = RoutePattern::parse("/api/orders/{id}").unwrap();
        assert!(p.matches("/api/orders/42"));
        assert!(!p.matches("/api/orders"));
        assert!(!p.matches("/api/orders/"));
        assert!(!p.matches("/api/orders/42/items"));
        let p = RoutePattern::parse("/admin/*").unwrap();
        assert!(p.matches("/admin"));
        assert!(p.matches("/admin/users/7"));
        assert!(!p.matches("/administrator"));
        let p = RoutePattern::parse("/*").unwrap();
        assert!(p.matches("/"));
        assert!(p.matches("/anything/at/all"));
        let p = RoutePattern::parse("/health").unwrap();
        assert!(p.matches("/health"));
        assert!(!p.matches("/health/x"));
        assert!(RoutePattern::parse("api").is_err());
        assert!(RoutePattern::parse("/a*").is_err());
        assert!(RoutePattern::parse("/a/x{id}").is_err());
    }

    #[test]
    fn first_rule_for_the_method_wins() {
        let rule = |p: &str, methods: Vec<Method>, scope: &str| ScopeRule {
            pattern: RoutePattern::parse(p).unwrap(),
            methods,
            scopes: RequiredScopes::all([scope]),
        };
        let rules = ScopeRules::new(vec![
            rule("/orders/*", vec![Method::POST], "orders:write"),
            rule("/orders/*", vec![], "orders:read"),
        ]);
        let found = |m: Method, p: &str| rules.find(&m, p).map(|r| format!("{:?}", r.scopes));
        assert!(found(Method::POST, "/orders/1")
            .unwrap()
            .contains("orders:write"));
        assert!(found(Method::GET, "/orders/1")
            .unwrap()
            .contains("orders:read"));
        assert!(found(Method::GET, "/other").is_none());
    }

    #[test]
    fn other_spellings_of_a_protected_path_are_caught() {
        let rules = ScopeRules::new(vec![
            ScopeRule {
                pattern: RoutePattern::parse("/admin/*").unwrap(),
                methods: vec![],
                scopes: RequiredScopes::all(["admin"]),
            },
            ScopeRule {
                pattern: RoutePattern::parse("/api/orders/{id}").unwrap(),
                methods: vec![Method::GET],
                scopes: RequiredScopes::all(["orders:read"]),
            },
        ]);
        for path in [
            "//admin/users",
            "/./admin/users",
            "/%61dmin/users",
            "/x/../admin/users",
        ] {
            assert!(rules.find(&Method::GET, path).is_some(), "{path}");
        }
        assert!(rules.find(&Method::GET, "/api/orders/42/").is_some());
        assert!(rules.find(&Method::HEAD, "/api/orders/42").is_some());
        assert!(rules.find(&Method::POST, "/api/orders/42").is_none());
        assert!(rules.find(&Method::GET, "/administrator").is_none());
        assert_eq!(canonical_path("/a%2Fb/%7Euser"), "/a%2Fb/~user");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("/../.."), "/");
    }
}
