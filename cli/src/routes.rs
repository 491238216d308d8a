//! Protected route patterns and the scopes they require.
//!
//! A proxy has no router, so routes are declared as path patterns: `/api/orders` (exact),
//! `/api/orders/{id}` (one segment each `{...}`), `/admin/*` (the prefix and everything below
//! it). The first rule that matches a request (pattern and, when given, method) decides; its
//! [`RequiredScopes`] layer makes the same decision as on an Axum route.
//!
//! Paths are matched in their canonical readings ([`CanonicalPath`], from the library, the
//! same that finds OAuth endpoints), so `//admin`, `/./admin`, `/%61dmin` or `/admin/` are
//! `/admin`; spellings that servers read differently (`/admin%2Fusers`, `/admin;x/users`)
//! are matched or refused as [`MatchOptions`] say.

use http::Method;
use oauth_audit::event::sanitize;
use oauth_audit::request_target::{same_method, CanonicalPath};
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
                    segments.push(Segment::Literal(literal(text, segment)?));
                }
            }
        }
        Ok(RoutePattern {
            segments,
            prefix,
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path`, a reading of a [`CanonicalPath`], matches; literal segments compare
    /// case-insensitively when `ignore_case`.
    pub fn matches(&self, path: &str, ignore_case: bool) -> bool {
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
                Segment::Literal(literal) if ignore_case => literal.eq_ignore_ascii_case(part),
                Segment::Literal(literal) => literal == part,
                Segment::Param => !part.is_empty(),
            })
    }
}

/// A literal segment of `pattern` as requests are matched: in its strict canonical reading
/// (`caf%C3%A9` is `café`, `%61dmin` is `admin`). A segment no request reading can equal is
/// an error, not a rule that silently never matches: an empty one (`//`, or a trailing `/`,
/// as readings drop both), a `.` or `..` (readings resolve them), or one that servers read
/// differently (`%2F`, `;`, `%00`...).
fn literal(pattern: &str, segment: &str) -> Result<String, String> {
    if segment.is_empty() {
        return Err(format!(
            "{pattern:?}: empty segment ('//' or a trailing '/'); requests are matched without empty segments or a trailing slash, so it would match nothing (write {:?})",
            canonical_pattern(pattern)
        ));
    }
    let reading = CanonicalPath::new(&format!("/{segment}"));
    let strict = reading.strict().strip_prefix('/').unwrap_or_default();
    if strict.is_empty() || reading.has_dot_segments() {
        return Err(format!(
            "{pattern:?}: segment {segment:?} is a '.' or '..', which requests are matched with resolved; write the path it stands for"
        ));
    }
    if let Some(ambiguity) = reading.ambiguity() {
        return Err(format!(
            "{pattern:?}: segment {segment:?} has {ambiguity}, which servers read differently; a rule cannot name it"
        ));
    }
    Ok(strict.to_owned())
}

/// `pattern` with its empty segments dropped, for an error message.
fn canonical_pattern(pattern: &str) -> String {
    let segments: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
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
    /// Whether the requirement is enforced (`scopes` refuses), not only recorded.
    pub enforce: bool,
}

impl ScopeRule {
    fn covers(&self, method: &str) -> bool {
        self.methods.is_empty()
            || self.methods.iter().any(|m| same_method(m.as_str(), method))
            || (same_method(method, "HEAD") && self.methods.contains(&Method::GET))
    }
}

/// How the proxy reads a path the upstream may read another way (`%2F`, `%5C`, `%00`,
/// `;parameters`, nested escapes). See [`CanonicalPath`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AmbiguousPaths {
    /// Match every reading; when they fall under different rules and one enforces, answer
    /// `400 ambiguous_path`.
    #[default]
    Refuse,
    /// The upstream decodes: match only the decoded reading.
    Decode,
}

/// What the proxy knows of how the upstream compares path case.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathCase {
    /// Unknown: rules match any case (`/ADMIN` is under `/admin/*`), OAuth endpoints are
    /// exempt from rules only in their configured case.
    #[default]
    Unknown,
    /// The upstream routes case-sensitively: rules and endpoints match the exact case.
    Sensitive,
    /// The upstream routes case-insensitively: rules and endpoints match any case.
    Insensitive,
}

/// How requests are matched against the rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchOptions {
    /// Paths the upstream may read differently.
    pub ambiguous_paths: AmbiguousPaths,
    /// Case of paths.
    pub path_case: PathCase,
}

/// What the rules decide for one request.
#[derive(Debug)]
pub enum Decision<'a> {
    /// No rule applies.
    Pass,
    /// This rule applies.
    Rule(&'a ScopeRule),
    /// The request is refused with `400` before any rule: readings disagree on an
    /// enforcing rule.
    Refuse(Refusal),
}

/// Why a request was refused, for the response and its event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `ambiguous_path` or `method_override`.
    pub code: &'static str,
    /// What was ambiguous and which enforcing rule was at stake.
    pub description: String,
}

/// The protected routes, first match wins.
#[derive(Clone, Debug, Default)]
pub struct ScopeRules {
    rules: Vec<ScopeRule>,
    options: MatchOptions,
}

impl ScopeRules {
    /// The rules in order, matched as `options` say.
    pub fn new(rules: Vec<ScopeRule>, options: MatchOptions) -> Self {
        ScopeRules { rules, options }
    }

    /// How many rules there are.
    pub fn count(&self) -> usize {
        self.rules.len()
    }

    /// How requests are matched.
    pub fn options(&self) -> MatchOptions {
        self.options
    }

    /// What the rules decide for a request of `method`, asking to be treated as each of
    /// `overrides` too ([`method_overrides`](oauth_audit::request_target::method_overrides)), at
    /// `path`.
    ///
    /// Each reading of the path (both, or only the decoded one with
    /// [`AmbiguousPaths::Decode`]) and each method is looked up; method names match whatever
    /// their case, and `GET` rules cover `HEAD`. When these lookups disagree and one of
    /// the rules found enforces, the request is refused: the upstream might serve it under
    /// the enforcing rule while the proxy applied another. A method override is refused
    /// wherever an enforcing rule covers the path, whatever methods the rule names: which
    /// method an override makes of a request is each framework's own reading.
    pub fn decide(
        &self,
        method: &Method,
        overrides: &[String],
        path: &CanonicalPath,
    ) -> Decision<'_> {
        let ignore_case = self.options.path_case != PathCase::Sensitive;
        let first = |method: &str, reading: &str| {
            self.rules
                .iter()
                .position(|rule| rule.covers(method) && rule.pattern.matches(reading, ignore_case))
        };
        // Most requests: one method, and a path every server reads the same (no ambiguity:
        // its strict and decoded readings are one, and it has no dot segment), so there is
        // nothing to disagree on and no list to gather.
        if overrides.is_empty() && path.ambiguity().is_none() {
            return match first(method.as_str(), path.strict()) {
                Some(i) => Decision::Rule(&self.rules[i]),
                None => Decision::Pass,
            };
        }
        // Dot segments are a question apart from decoding: a router that decodes may still
        // match them unresolved, so that reading counts in either mode.
        let readings: Vec<&str> = match self.options.ambiguous_paths {
            AmbiguousPaths::Refuse => path.readings().collect(),
            // Windows' trimming of segments is a reading apart from decoding too.
            AmbiguousPaths::Decode => std::iter::once(path.decoded())
                .chain(path.trimmed())
                .chain(path.unresolved())
                .collect(),
        };
        let methods: Vec<&str> = std::iter::once(method.as_str())
            .chain(overrides.iter().map(String::as_str))
            .collect();
        let found: Vec<Option<usize>> = readings
            .iter()
            .flat_map(|reading| methods.iter().map(|method| first(method, reading)))
            .collect();
        let enforcing = found
            .iter()
            .flatten()
            .map(|&i| &self.rules[i])
            .find(|rule| rule.enforce);
        // Which method an override makes of a request is each framework's own reading (the
        // first of comma-separated values for Express's method-override, with Node's
        // Latin-1 and JavaScript's `trim`; the value upper-cased for Rack): under an
        // override, an enforcing rule for the path counts whatever methods it names.
        let enforcing_any_method = || {
            self.rules.iter().find(|rule| {
                rule.enforce
                    && readings
                        .iter()
                        .any(|reading| rule.pattern.matches(reading, ignore_case))
            })
        };
        if let Some(rule) =
            enforcing.or_else(|| (!overrides.is_empty()).then(enforcing_any_method).flatten())
        {
            if !overrides.is_empty() {
                return Decision::Refuse(Refusal {
                    code: oauth_audit::event::error_code::METHOD_OVERRIDE,
                    description: format!(
                        "{} request asks to be treated as {} on a path under the enforcing rule {}",
                        sanitize(method.as_str(), 32),
                        sanitize(&overrides.join(", "), 128),
                        rule.pattern.as_str()
                    ),
                });
            }
            if !found.windows(2).all(|pair| pair[0] == pair[1]) {
                let why = path
                    .ambiguity()
                    .map_or_else(|| "an ambiguous path".to_owned(), |a| a.to_string());
                return Decision::Refuse(Refusal {
                    code: oauth_audit::event::error_code::AMBIGUOUS_PATH,
                    description: format!(
                        "the path has {why}: its readings fall under different rules, one of them the enforcing rule {}",
                        rule.pattern.as_str()
                    ),
                });
            }
        }
        match found.into_iter().flatten().next() {
            Some(i) => Decision::Rule(&self.rules[i]),
            None => Decision::Pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl ScopeRules {
        fn find(&self, method: &Method, path: &str) -> Option<&ScopeRule> {
            match self.decide(method, &[], &CanonicalPath::new(path)) {
                Decision::Rule(rule) => Some(rule),
                Decision::Pass | Decision::Refuse(_) => None,
            }
        }
    }

    fn rule(p: &str, methods: Vec<Method>, scope: &str, enforce: bool) -> ScopeRule {
        let mut scopes = RequiredScopes::all([scope]);
        if enforce {
            scopes = scopes.enforce();
        }
        ScopeRule {
            pattern: RoutePattern::parse(p).unwrap(),
            methods,
            scopes,
            enforce,
        }
    }

    #[test]
    fn patterns_match_exact_params_and_prefixes() {
        let p = RoutePattern::parse("/api/orders/{id}").unwrap();
        assert!(p.matches("/api/orders/42", false));
        assert!(!p.matches("/api/orders", false));
        assert!(!p.matches("/api/orders/", false));
        assert!(!p.matches("/api/orders/42/items", false));
        let p = RoutePattern::parse("/admin/*").unwrap();
        assert!(p.matches("/admin", false));
        assert!(p.matches("/admin/users/7", false));
        assert!(!p.matches("/administrator", false));
        assert!(!p.matches("/ADMIN/users", false));
        assert!(p.matches("/ADMIN/users", true));
        let p = RoutePattern::parse("/*").unwrap();
        assert!(p.matches("/", false));
        assert!(p.matches("/anything/at/all", false));
        let p = RoutePattern::parse("/health").unwrap();
        assert!(p.matches("/health", false));
        assert!(!p.matches("/health/x", false));
        assert!(RoutePattern::parse("api").is_err());
        // Segments no request reading can equal are refused, with the reason.
        for (pattern, reason) in [
            ("/admin/", "empty segment"),
            ("//admin/*", "empty segment"),
            ("/a//b", "empty segment"),
            ("/a/./b", "'.' or '..'"),
            ("/a/../b", "'.' or '..'"),
            ("/a/%2e%2e/*", "'.' or '..'"),
            ("/admin%2Fusers", "servers read differently"),
            ("/admin;x/*", "servers read differently"),
        ] {
            let err = RoutePattern::parse(pattern).unwrap_err();
            assert!(err.contains(reason), "{pattern}: {err}");
        }
        // Literal segments are compared in their canonical reading.
        let p = RoutePattern::parse("/caf%C3%A9/%61dmin/*").unwrap();
        assert!(p.matches(CanonicalPath::new("/caf%c3%a9/admin/x").strict(), false));
        assert!(p.matches(CanonicalPath::new("/café/%61dmin/x").strict(), false));
        assert_eq!(p.as_str(), "/caf%C3%A9/%61dmin/*");
        assert!(RoutePattern::parse("/a*").is_err());
        assert!(RoutePattern::parse("/a/x{id}").is_err());
    }

    #[test]
    fn first_rule_for_the_method_wins() {
        let rules = ScopeRules::new(
            vec![
                rule("/orders/*", vec![Method::POST], "orders:write", false),
                rule("/orders/*", vec![], "orders:read", false),
            ],
            MatchOptions::default(),
        );
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
        let rules = ScopeRules::new(
            vec![
                rule("/admin/*", vec![], "admin", true),
                rule("/api/orders/{id}", vec![Method::GET], "orders:read", false),
            ],
            MatchOptions::default(),
        );
        for path in ["//admin/users", "/%61dmin/users", "/ADMIN/users", "/Admin"] {
            assert!(rules.find(&Method::GET, path).is_some(), "{path}");
        }
        // With dot segments, a router that does not resolve them reads another path.
        for path in ["/./admin/users", "/x/../admin/users"] {
            assert_eq!(decide(&rules, "GET", &[], path), "ambiguous_path", "{path}");
        }
        assert!(rules.find(&Method::GET, "/api/orders/42/").is_some());
        assert!(rules.find(&Method::HEAD, "/api/orders/42").is_some());
        assert!(rules.find(&Method::POST, "/api/orders/42").is_none());
        assert!(rules.find(&Method::GET, "/administrator").is_none());
    }

    fn decide(rules: &ScopeRules, method: &str, overrides: &[&str], path: &str) -> String {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        match rules.decide(&method, &overrides, &CanonicalPath::new(path)) {
            Decision::Pass => "pass".to_owned(),
            Decision::Rule(rule) => rule.pattern.as_str().to_owned(),
            Decision::Refuse(refusal) => refusal.code.to_owned(),
        }
    }

    #[test]
    fn ambiguous_paths_under_an_enforcing_rule_are_refused_by_default() {
        let rules = ScopeRules::new(
            vec![
                rule("/public/*", vec![], "public", false),
                rule("/admin/*", vec![], "admin", true),
            ],
            MatchOptions::default(),
        );
        for path in [
            "/admin;x=1/users",
            "/admin%2Fusers",
            "/admin%2fusers",
            "/admin%5Cusers",
            "/admin\\users",
            "/admin%00/users",
            "/%2561dmin/users",
            "/public/..%2Fadmin/users",
            "/public/..;/admin/users",
            // IIS drops a segment's trailing dots and spaces: `/admin/users` there.
            "/admin./users",
            "/admin%2e/users",
            "/admin%20/users",
            "/admin.../users",
            // A segment Windows may take for `..`.
            "/public/..%20/admin/users",
            "/public/.../admin/users",
        ] {
            assert_eq!(decide(&rules, "GET", &[], path), "ambiguous_path", "{path}");
        }
        // Dot segments: resolved, the path leaves the enforcing rule; a router that matches
        // it unresolved serves it under that rule.
        for path in [
            "/admin/../public/x",
            "/admin/%2e%2e/public/x",
            "/admin/x/../../public/x",
            "/public/../admin/users",
        ] {
            assert_eq!(decide(&rules, "GET", &[], path), "ambiguous_path", "{path}");
        }
        // Ambiguous, but every reading lands on the same rule (or none): nothing at stake.
        assert_eq!(decide(&rules, "GET", &[], "/admin/a%2Fb"), "/admin/*");
        assert_eq!(decide(&rules, "GET", &[], "/admin/./users"), "/admin/*");
        assert_eq!(
            decide(&rules, "GET", &[], "/files/../public/x"),
            "/public/*"
        );
        assert_eq!(decide(&rules, "GET", &[], "/files/a%2Fb"), "pass");
        assert_eq!(decide(&rules, "GET", &[], "/public/a;b"), "/public/*");
    }

    #[test]
    fn a_decoding_upstream_is_matched_as_it_reads() {
        let options = MatchOptions {
            ambiguous_paths: AmbiguousPaths::Decode,
            path_case: PathCase::Unknown,
        };
        let rules = ScopeRules::new(vec![rule("/admin/*", vec![], "admin", true)], options);
        for path in [
            "/admin;x=1/users",
            "/admin%2Fusers",
            "/admin%5Cusers",
            "/admin%00/users",
        ] {
            assert_eq!(decide(&rules, "GET", &[], path), "/admin/*", "{path}");
        }
        // Nor of a segment's trailing dots and spaces, which IIS drops.
        for path in ["/admin./users", "/admin%20/users"] {
            assert_eq!(decide(&rules, "GET", &[], path), "ambiguous_path", "{path}");
        }
        // Decoding says nothing of dot segments: the unresolved reading still counts.
        assert_eq!(
            decide(&rules, "GET", &[], "/admin/%2e%2e/public"),
            "ambiguous_path"
        );
    }

    #[test]
    fn path_case_follows_the_upstream() {
        let with = |path_case| {
            ScopeRules::new(
                vec![rule("/admin/*", vec![], "admin", true)],
                MatchOptions {
                    ambiguous_paths: AmbiguousPaths::Refuse,
                    path_case,
                },
            )
        };
        assert_eq!(
            decide(&with(PathCase::Unknown), "GET", &[], "/ADMIN/users"),
            "/admin/*"
        );
        assert_eq!(
            decide(&with(PathCase::Insensitive), "GET", &[], "/ADMIN/users"),
            "/admin/*"
        );
        assert_eq!(
            decide(&with(PathCase::Sensitive), "GET", &[], "/ADMIN/users"),
            "pass"
        );
    }

    #[test]
    fn methods_match_in_any_case_and_overrides_are_refused_where_a_rule_enforces() {
        let rules = ScopeRules::new(
            vec![
                rule("/orders/*", vec![Method::DELETE], "orders:delete", true),
                rule("/orders/*", vec![Method::GET], "orders:read", false),
                rule("/reports/*", vec![], "reports", false),
            ],
            MatchOptions::default(),
        );
        assert_eq!(decide(&rules, "delete", &[], "/orders/1"), "/orders/*");
        assert_eq!(decide(&rules, "Delete", &[], "/orders/1"), "/orders/*");
        assert_eq!(
            decide(&rules, "POST", &["DELETE"], "/orders/1"),
            "method_override"
        );
        assert_eq!(
            decide(&rules, "GET", &["delete"], "/orders/1"),
            "method_override"
        );
        assert_eq!(decide(&rules, "POST", &[], "/orders/1"), "pass");
        assert_eq!(decide(&rules, "head", &[], "/orders/1"), "/orders/*");
        // Overrides that no rule names as written, which frameworks still read as `DELETE`
        // (Express's method-override takes the first of `DELETE,GET`; Node reads the byte
        // 0xA0 as a no-break space and `trim` drops it), or any method at all.
        for other in ["DELETE,GET", "DELETE\u{a0}", "DELETE\u{fffd}", "PURGE"] {
            assert_eq!(
                decide(&rules, "POST", &[other], "/orders/1"),
                "method_override",
                "{other:?}"
            );
        }
        // No enforcing rule at stake: the override is recorded under the rule it reaches.
        assert_eq!(
            decide(&rules, "POST", &["DELETE"], "/reports/1"),
            "/reports/*"
        );
        assert_eq!(decide(&rules, "POST", &["DELETE"], "/other"), "pass");
    }

    /// A lenient upstream's reading, written independently of the library: decode until
    /// nothing changes, end at NUL, split on `/` and `\\`, cut `;parameters`, resolve dots,
    /// lower-case.
    fn model_upstream(path: &str) -> String {
        let mut bytes = path.as_bytes().to_vec();
        for _ in 0..8 {
            let next: Vec<u8> = percent_encoding::percent_decode(&bytes).collect();
            if next == bytes {
                break;
            }
            bytes = next;
        }
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        let text = String::from_utf8_lossy(bytes).to_lowercase();
        let mut stack: Vec<&str> = Vec::new();
        for segment in text.split(['/', '\\']) {
            match segment.split(';').next().unwrap_or_default() {
                "" | "." => {}
                ".." => {
                    stack.pop();
                }
                segment => stack.push(segment),
            }
        }
        stack.join("/")
    }

    /// A router that does not resolve dot segments (Werkzeug's `<path:...>`, Express's `/*`):
    /// it decodes once and matches the segments as they are, `.` and `..` included.
    fn unresolving_upstream(path: &str) -> String {
        let bytes: Vec<u8> = percent_encoding::percent_decode(path.as_bytes()).collect();
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        text.split('/')
            .filter(|segment| !segment.is_empty())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn spelling() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("/"),
            Just("admin"),
            Just("ADMIN"),
            Just("Admin"),
            Just("public"),
            Just("users"),
            Just("."),
            Just(".."),
            Just("%2E%2E"),
            Just(";x=1"),
            Just("%3B"),
            Just("%2F"),
            Just("%2f"),
            Just("%5C"),
            Just("\\"),
            Just("%00"),
            Just("%25"),
            Just("%61"),
            Just("%2561"),
            Just("%"),
            Just("2F"),
            Just("x"),
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|p| format!("/{}", p.concat()))
    }

    proptest::proptest! {
        /// Whatever the spelling, a request the model upstream serves under `/admin` is
        /// either enforced by the `/admin/*` rule or refused; never passed on unchecked.
        #[test]
        fn nothing_the_upstream_serves_as_admin_escapes_the_rule(path in spelling()) {
            let rules = ScopeRules::new(
                vec![
                    rule("/public/*", vec![], "public", false),
                    rule("/admin/*", vec![], "admin", true),
                ],
                MatchOptions::default(),
            );
            let served = model_upstream(&path);
            let unresolved = unresolving_upstream(&path);
            let under_admin = [&served, &unresolved]
                .iter()
                .any(|served| *served == "admin" || served.starts_with("admin/"));
            let verdict = decide(&rules, "GET", &[], &path);
            if under_admin {
                proptest::prop_assert!(
                    verdict == "/admin/*" || verdict == "ambiguous_path",
                    "{path:?} is served as /{served} but decided {verdict}"
                );
            }
            // The same in decode mode, where only dot segments and trailing dots or spaces
            // are refused (a router that decodes may still match them unresolved, and
            // Windows trims them).
            let decoding = ScopeRules::new(
                vec![rule("/admin/*", vec![], "admin", true)],
                MatchOptions { ambiguous_paths: AmbiguousPaths::Decode, path_case: PathCase::Unknown },
            );
            if under_admin {
                let verdict = decide(&decoding, "GET", &[], &path);
                let read = CanonicalPath::new(&path);
                let dots = read.has_dot_segments() || read.trimmed().is_some();
                proptest::prop_assert!(
                    verdict == "/admin/*" || (dots && verdict == "ambiguous_path"),
                    "{path:?} is served as /{served} but decided {verdict} in decode mode"
                );
            }
        }
    }
}
