//! Sender-constrained tokens: DPoP proofs (RFC 9449).
//!
//! A DPoP-bound access token names the public key it is bound to (`cnf.jkt`), and each
//! request that uses it carries a fresh proof, a JWT signed with that key, over the request's
//! method and URI and the token's hash. A stolen token is useless without the key, and a
//! stolen proof is useless for another request or after a short while.
//!
//! The audit layer checks every proof with a [`DpopVerifier`] and records the binding and
//! the proof's [`ProofOutcome`] in `token.binding`: `valid`, or the first check it failed.
//! A token bound to a key that arrives as a plain `Bearer` token is recorded as a
//! downgrade. Detection rules `dpop_proof_replay` and `binding_downgrade` alert on the two
//! signs of a stolen token, and enforcing [`RequiredScopes`](crate::RequiredScopes) refuse
//! a bound token without a valid proof.
//!
//! ```
//! use oauth_audit::dpop::{DpopVerifier, ProofOutcome};
//!
//! let verifier = DpopVerifier::default();
//! let request = http::Request::get("https://api.example.com/orders")
//!     .header("dpop", "not-a-proof")
//!     .body(())
//!     .unwrap();
//! let check = verifier.check(request.method(), request.uri(), request.headers(), Some("token"));
//! assert_eq!(check.outcome, ProofOutcome::Malformed);
//! ```

mod htu;
mod outcome;
mod replay;
mod verifier;

pub use outcome::ProofOutcome;
pub use verifier::{
    DpopVerifier, DpopVerifierBuilder, ProofCheck, ProofUse, DEFAULT_MAX_AGE,
    DEFAULT_MAX_FUTURE_SKEW, DEFAULT_REPLAY_CAPACITY, DPOP, MAX_PROOF_BYTES,
};
