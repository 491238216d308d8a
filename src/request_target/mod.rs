//! How a request target is read for matching: one canonical path and method reading, used
//! for OAuth endpoints ([`Endpoints::lookup`](crate::oauth::Endpoints::lookup)), by
//! [`RequiredScopes`](crate::RequiredScopes) and by the `oauth-audit proxy` route rules.
//!
//! Servers do not agree on what a path names: one decodes `%2F` into a separator, another
//! keeps it as data; one cuts `;jsessionid=...` from a segment, another does not; one
//! upper-cases `delete`, another answers `405`. A rule that looks at one reading can be
//! passed by a request the server behind it reads another way. [`CanonicalPath`] keeps
//! both readings and says when they differ ([`Ambiguity`]); [`method_overrides`] finds the
//! `X-HTTP-Method-Override` headers and `_method` parameters that ask for another method.
//!
//! ```
//! use oauth_audit::request_target::{Ambiguity, CanonicalPath};
//!
//! let path = CanonicalPath::new("/admin;x=1/users");
//! assert_eq!(path.readings().collect::<Vec<_>>(), ["/admin;x=1/users", "/admin/users"]);
//! assert_eq!(path.ambiguity(), Some(Ambiguity::PathParameter));
//! ```

mod method;
mod path;
mod skip;

pub use method::{
    method_overrides, same_method, METHOD_OVERRIDE_HEADERS, METHOD_OVERRIDE_PARAM,
    TUNNELED_METHOD_PARAM,
};
pub(crate) use path::is_canonical_without;
pub use path::{Ambiguity, CanonicalPath};
pub use skip::SkipPaths;
