use serde::Serialize;
use serde_json::Value;

use crate::text::{is_safe, sanitize};

/// At most this many scopes are read from a token (`scope` / `scp`).
pub const MAX_SCOPES: usize = 64;
/// At most this many audiences are read from a token (`aud`).
pub const MAX_AUDIENCES: usize = 16;
/// Text claims (`sub`, `client_id`, `jti`, `iss`, each audience, each scope...) are cut to
/// this many bytes; a longer scope is left out whole, so that a cut one never matches.
pub const MAX_CLAIM_BYTES: usize = 256;

/// At most this many actors of a delegation chain (`act` claims nested in `act`, RFC 8693
/// §4.1) are read; a longer chain is cut and `act` noted in
/// [`truncated`](TokenClaims::truncated).
pub const MAX_DELEGATION_DEPTH: usize = 8;

/// One actor of a token's delegation chain (an RFC 8693 `act` claim): who acts, or acted
/// before, on behalf of the token's subject. Recorded as an item of `actor.delegation`.
///
/// Each text is capped to [`MAX_CLAIM_BYTES`] with control characters escaped, like every
/// other claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Delegate {
    /// The actor's `client_id` (RFC 8693 §4.3), when the `act` claim names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The actor's `iss`: who issued the identity in `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The actor's `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The claims of a token that the audit record uses. Read tolerantly: a claim of the wrong
/// type is ignored, never an error.
///
/// This is the one reader of token claims, for JWT payloads and introspection answers
/// alike. Sizes are capped ([`MAX_SCOPES`], [`MAX_AUDIENCES`], [`MAX_CLAIM_BYTES`]) and
/// control characters escaped, since every claim is the presenter's own words until
/// verified; [`truncated`](TokenClaims::truncated) names what was cut.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenClaims {
    /// `sub`, else `username` (RFC 7662 introspection answers often name the user only so).
    pub subject: Option<String>,
    /// `client_id`, else `azp`, else `cid`.
    pub client_id: Option<String>,
    /// `scope` (space-separated), else `scp` (array or string).
    pub scopes: Vec<String>,
    /// `jti`.
    pub jti: Option<String>,
    /// `iss`.
    pub issuer: Option<String>,
    /// `aud` (string or array).
    pub audience: Vec<String>,
    /// `iat`, seconds since the epoch.
    pub issued_at: Option<i64>,
    /// `exp`, seconds since the epoch.
    pub expires_at: Option<i64>,
    /// `nbf`, seconds since the epoch.
    pub not_before: Option<i64>,
    /// `act.sub`: the acting party of a delegated token (RFC 8693).
    pub actor: Option<String>,
    /// `cnf.jkt`: the thumbprint of the key a DPoP-bound token is bound to (RFC 9449 §6).
    pub cnf_jkt: Option<String>,
    /// `cnf.x5t#S256`: the thumbprint of the client certificate a token is bound to
    /// (RFC 8705 §3.1).
    pub cnf_x5t_s256: Option<String>,
    /// The delegation chain: `act`, then the `act` nested in it, and so on (the current
    /// actor first, the earliest last), at most [`MAX_DELEGATION_DEPTH`] of them.
    pub delegation: Vec<Delegate>,
    /// The claims cut to the limits, by claim name (`scope`, `aud`, `sub`, ...).
    pub truncated: Vec<&'static str>,
}

impl TokenClaims {
    /// Reads the claims of a JWT payload or an introspection response.
    ///
    /// ```
    /// let claims = oauth_audit::token::TokenClaims::from_json(&serde_json::json!({
    ///     "sub": "alice", "azp": "web", "scp": ["a", "b"], "aud": "api", "exp": 10
    /// }));
    /// assert_eq!(claims.client_id.as_deref(), Some("web"));
    /// assert_eq!(claims.scopes, ["a", "b"]);
    /// assert_eq!(claims.audience, ["api"]);
    ///
    /// // A token exchanged twice: the gateway acts now, for a service that acted before.
    /// let exchanged = oauth_audit::token::TokenClaims::from_json(&serde_json::json!({
    ///     "sub": "alice",
    ///     "act": {"sub": "gateway", "act": {"sub": "billing", "client_id": "billing-svc"}}
    /// }));
    /// assert_eq!(exchanged.actor.as_deref(), Some("gateway"));
    /// let chain: Vec<_> = exchanged.delegation.iter().map(|d| d.subject.as_deref()).collect();
    /// assert_eq!(chain, [Some("gateway"), Some("billing")]);
    /// assert_eq!(exchanged.delegation[1].client_id.as_deref(), Some("billing-svc"));
    /// ```
    pub fn from_json(value: &Value) -> Self {
        Self::read(|slot| value.get(NAMES[slot]), Default::default())
    }

    /// Reads the claims that [`claim_slot`] picked out of a JWT's payload as it was parsed
    /// ([`crate::json::members`]): the same reading as [`from_json`](Self::from_json) of the
    /// whole payload, without a map of every member.
    ///
    /// A text claim kept as it is (nothing to escape, short enough) is taken out of its
    /// member rather than copied: the member is left an empty string.
    pub(crate) fn from_members(members: &mut ClaimMembers) -> Self {
        let mut taken: [Option<String>; TEXT_SLOTS] = Default::default();
        for (slot, taken) in taken.iter_mut().enumerate() {
            if let Some(Value::String(text)) = &mut members[slot] {
                if is_safe(text, MAX_CLAIM_BYTES) {
                    *taken = Some(std::mem::take(text));
                }
            }
        }
        Self::read(|slot| members.get(slot).and_then(Option::as_ref), taken)
    }

    /// Reads the claims of an object's members, given by name in their order (of a name
    /// given twice the last counts): `value` reads a member's value, and is asked only for
    /// the members the claims use.
    pub(crate) fn from_named<'n, M>(
        members: impl IntoIterator<Item = (&'n str, M)>,
        value: impl Fn(M) -> Option<Value>,
    ) -> Self {
        let mut slots: ClaimMembers = std::array::from_fn(|_| None);
        for (name, member) in members {
            if let Some(slot) = claim_slot(name) {
                slots[slot] = value(member);
            }
        }
        Self::from_members(&mut slots)
    }

    /// The one reading of claims, whatever holds them: `member` gives the value of the
    /// member in a slot of [`NAMES`], and `taken` the text of a text claim's slot that was
    /// taken out of its member, kept as it is (see [`from_members`](Self::from_members)).
    fn read<'v>(
        member: impl Fn(usize) -> Option<&'v Value>,
        mut taken: [Option<String>; TEXT_SLOTS],
    ) -> Self {
        let mut truncated = Vec::new();
        let mut text = |slot: usize| {
            if let Some(text) = taken.get_mut(slot).and_then(Option::take) {
                return Some(text);
            }
            member(slot)
                .and_then(Value::as_str)
                .map(|v| capped(v, NAMES[slot], &mut truncated))
        };
        let subject = text(SUB).or_else(|| text(USERNAME));
        let client_id = text(CLIENT_ID).or_else(|| text(AZP)).or_else(|| text(CID));
        let jti = text(JTI);
        let issuer = text(ISS);
        let act = member(ACT);
        let actor = act
            .and_then(|act| act.get("sub"))
            .and_then(Value::as_str)
            .map(|v| capped(v, "act", &mut truncated));
        let confirmation = |name: &str, claim: &'static str, truncated: &mut Vec<&'static str>| {
            member(CNF)
                .and_then(|cnf| cnf.get(name))
                .and_then(Value::as_str)
                .map(|v| capped(v, claim, truncated))
        };
        let cnf_jkt = confirmation("jkt", "cnf", &mut truncated);
        let cnf_x5t_s256 = confirmation("x5t#S256", "cnf", &mut truncated);
        let delegation = delegation(act, &mut truncated);
        let int = |slot: usize| {
            member(slot).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        };
        let scopes = match (member(SCOPE), member(SCP)) {
            (Some(Value::String(s)), _) => {
                bounded("scope", s.split(' '), MAX_SCOPES, &mut truncated)
            }
            (_, Some(Value::String(s))) => bounded("scp", s.split(' '), MAX_SCOPES, &mut truncated),
            (_, Some(Value::Array(items))) => bounded(
                "scp",
                items.iter().filter_map(Value::as_str),
                MAX_SCOPES,
                &mut truncated,
            ),
            _ => Vec::new(),
        };
        let audience = match member(AUD) {
            Some(Value::String(s)) => {
                bounded("aud", std::iter::once(s.as_str()), 1, &mut truncated)
            }
            Some(Value::Array(items)) => bounded(
                "aud",
                items.iter().filter_map(Value::as_str),
                MAX_AUDIENCES,
                &mut truncated,
            ),
            _ => Vec::new(),
        };
        TokenClaims {
            subject,
            client_id,
            scopes,
            jti,
            issuer,
            audience,
            issued_at: int(IAT),
            expires_at: int(EXP),
            not_before: int(NBF),
            actor,
            cnf_jkt,
            cnf_x5t_s256,
            delegation,
            truncated,
        }
    }
}

/// The members of a token's claims that [`TokenClaims`] reads, by slot.
const NAMES: [&str; CLAIM_SLOTS] = [
    "sub",
    "username",
    "client_id",
    "azp",
    "cid",
    "jti",
    "iss",
    "act",
    "cnf",
    "scope",
    "scp",
    "aud",
    "iat",
    "exp",
    "nbf",
];
const SUB: usize = 0;
const USERNAME: usize = 1;
const CLIENT_ID: usize = 2;
const AZP: usize = 3;
const CID: usize = 4;
const JTI: usize = 5;
const ISS: usize = 6;
/// The text claims' slots are the first ones, [`SUB`] to [`ISS`].
const TEXT_SLOTS: usize = ISS + 1;
const ACT: usize = 7;
const CNF: usize = 8;
const SCOPE: usize = 9;
const SCP: usize = 10;
const AUD: usize = 11;
const IAT: usize = 12;
/// The slot of `exp`, which the inspector checks is a number.
pub(crate) const EXP: usize = 13;
/// The slot of `nbf`, which the inspector checks is a number when present.
pub(crate) const NBF: usize = 14;
/// How many members [`TokenClaims`] reads.
pub(crate) const CLAIM_SLOTS: usize = 15;

/// The claims [`TokenClaims`] reads, picked out of a payload by [`claim_slot`].
pub(crate) type ClaimMembers = [Option<Value>; CLAIM_SLOTS];

/// The slot of a payload's member that [`TokenClaims`] reads, `None` for any other.
pub(crate) fn claim_slot(name: &str) -> Option<usize> {
    // A `match` compares lengths first: most members are ruled out without a byte read.
    Some(match name {
        "sub" => SUB,
        "username" => USERNAME,
        "client_id" => CLIENT_ID,
        "azp" => AZP,
        "cid" => CID,
        "jti" => JTI,
        "iss" => ISS,
        "act" => ACT,
        "cnf" => CNF,
        "scope" => SCOPE,
        "scp" => SCP,
        "aud" => AUD,
        "iat" => IAT,
        "exp" => EXP,
        "nbf" => NBF,
        _ => return None,
    })
}

impl TokenClaims {
    /// How many bytes of text the claims hold (what keeping them costs, beyond their fixed
    /// size).
    pub(crate) fn text_bytes(&self) -> usize {
        let delegates = self
            .delegation
            .iter()
            .flat_map(|d| [&d.subject, &d.issuer, &d.client_id])
            .flatten();
        self.scopes
            .iter()
            .chain(&self.audience)
            .chain(&self.subject)
            .chain(&self.client_id)
            .chain(&self.jti)
            .chain(&self.issuer)
            .chain(&self.actor)
            .chain(&self.cnf_jkt)
            .chain(&self.cnf_x5t_s256)
            .chain(delegates)
            .map(String::len)
            .sum()
    }
}

/// The `act` chain, outermost first: iterative, so that depth costs no stack, and cut at
/// [`MAX_DELEGATION_DEPTH`]. An `act` that is not an object (not RFC 8693) ends the chain.
fn delegation(act: Option<&Value>, truncated: &mut Vec<&'static str>) -> Vec<Delegate> {
    let mut chain = Vec::new();
    let mut next = act;
    while let Some(act) = next {
        let Some(act) = act.as_object() else {
            break;
        };
        if chain.len() == MAX_DELEGATION_DEPTH {
            note("act", truncated);
            break;
        }
        let mut text = |key: &str| {
            act.get(key)
                .and_then(Value::as_str)
                .map(|v| capped(v, "act", truncated))
        };
        chain.push(Delegate {
            client_id: text("client_id"),
            issuer: text("iss"),
            subject: text("sub"),
        });
        next = act.get("act");
    }
    chain
}

/// `value` made safe and cut to [`MAX_CLAIM_BYTES`]; notes `claim` when something was lost.
fn capped(value: &str, claim: &'static str, truncated: &mut Vec<&'static str>) -> String {
    let out = sanitize(value, MAX_CLAIM_BYTES);
    // Kept as it is: nothing was escaped or cut.
    if out == value {
        return out;
    }
    let escaped_len: usize = value
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().len()
            } else {
                c.len_utf8()
            }
        })
        .sum();
    if out.len() < escaped_len {
        note(claim, truncated);
    }
    out
}

/// Non-empty items of at most [`MAX_CLAIM_BYTES`] without control characters, at most
/// `max` of them; notes `claim` when any was left out.
fn bounded<'a>(
    claim: &'static str,
    items: impl Iterator<Item = &'a str>,
    max: usize,
    truncated: &mut Vec<&'static str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        if item.is_empty() {
            continue;
        }
        if out.len() == max || item.len() > MAX_CLAIM_BYTES || item.chars().any(char::is_control) {
            note(claim, truncated);
            if out.len() == max {
                break;
            }
            continue;
        }
        out.push(item.to_owned());
    }
    out
}

fn note(claim: &'static str, truncated: &mut Vec<&'static str>) {
    if !truncated.contains(&claim) {
        truncated.push(claim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The claims of a JSON payload, picked out as the inspector picks them while parsing;
    /// none when it is not one JSON object.
    pub(super) fn from_body(bytes: &[u8]) -> TokenClaims {
        crate::json::members::<CLAIM_SLOTS>(bytes, claim_slot)
            .map(|mut members| TokenClaims::from_members(&mut members))
            .unwrap_or_default()
    }

    #[test]
    fn every_claim_name_has_its_own_slot_and_no_other_name_has_one() {
        for (slot, name) in NAMES.iter().enumerate() {
            assert_eq!(claim_slot(name), Some(slot), "{name}");
        }
        for other in [
            "", "Sub", "subject", "scopes", "ex", "nbf ", "x5t#S256", "jkt",
        ] {
            assert_eq!(claim_slot(other), None, "{other}");
        }
    }

    #[test]
    fn a_claim_given_twice_reads_as_its_last_as_in_a_value() {
        let text = br#"{"sub":"first","scope":"a b","sub":"second","act":{"sub":"x"},"act":7,"exp":1,"exp":"soon"}"#;
        let value: Value = serde_json::from_slice(text).unwrap();
        let claims = from_body(text);
        assert_eq!(claims, TokenClaims::from_json(&value));
        assert_eq!(claims.subject.as_deref(), Some("second"));
        assert_eq!(claims.actor, None);
        assert_eq!(claims.expires_at, None);
    }

    #[test]
    fn serde_jsons_raw_value_name_does_not_stand_for_other_claims() {
        // `serde_json`'s `Value` reads this as `{"sub":"admin","scope":"admin"}`; the server
        // that accepts the token, and every other parser, as one claim with an odd name.
        let text = br#"{"$serde_json::private::RawValue":"{\"sub\":\"admin\",\"scope\":\"admin\"}","aud":"api"}"#;
        let claims = from_body(text);
        assert_eq!(claims.subject, None);
        assert!(claims.scopes.is_empty());
        assert_eq!(claims.audience, ["api"]);
        let nested =
            br#"{"sub":"alice","act":{"$serde_json::private::RawValue":"{\"sub\":\"admin\"}"}}"#;
        let claims = from_body(nested);
        assert_eq!(claims.subject.as_deref(), Some("alice"));
        assert_eq!(claims.actor, None);
    }

    #[test]
    fn tolerant_reading() {
        let c = TokenClaims::from_json(&json!({
            "sub": 7, "client_id": "c", "azp": "ignored", "scope": " a  b ",
            "aud": ["x", 3, "y"], "iat": 1.5e9, "exp": "soon", "act": {"sub": "svc"}
        }));
        assert_eq!(c.subject, None);
        assert_eq!(c.client_id.as_deref(), Some("c"));
        assert_eq!(c.scopes, ["a", "b"]);
        assert_eq!(c.audience, ["x", "y"]);
        assert_eq!(c.issued_at, Some(1_500_000_000));
        assert_eq!(c.expires_at, None);
        assert_eq!(c.actor.as_deref(), Some("svc"));
        assert_eq!(
            TokenClaims::from_json(&json!({"cid": "okta"}))
                .client_id
                .as_deref(),
            Some("okta")
        );
        assert_eq!(
            TokenClaims::from_json(&json!([1, 2])),
            TokenClaims::default()
        );
    }

    #[test]
    fn username_names_the_user_when_sub_is_absent() {
        let c = TokenClaims::from_json(
            &json!({"active": true, "username": "alice", "client_id": "web"}),
        );
        assert_eq!(c.subject.as_deref(), Some("alice"));
        let c = TokenClaims::from_json(&json!({"sub": "u-1", "username": "alice"}));
        assert_eq!(c.subject.as_deref(), Some("u-1"));
    }

    #[test]
    fn sizes_are_capped_and_cuts_named() {
        let scopes: Vec<String> = (0..12_000).map(|i| format!("s{i}")).collect();
        let c = TokenClaims::from_json(&json!({
            "scope": scopes.join(" "), "sub": "x".repeat(10_000), "aud": vec!["a"; 100],
            "jti": "j\nk", "iss": "https://issuer"
        }));
        assert_eq!(c.scopes.len(), MAX_SCOPES);
        assert_eq!(c.audience.len(), MAX_AUDIENCES);
        assert_eq!(c.subject.as_ref().unwrap().len(), MAX_CLAIM_BYTES);
        assert_eq!(c.jti.as_deref(), Some("j\\u{a}k"));
        assert_eq!(c.truncated, ["sub", "scope", "aud"]);
        let long_scope = "a".repeat(MAX_CLAIM_BYTES + 1);
        let c = TokenClaims::from_json(&json!({"scp": [long_scope, "read"]}));
        assert_eq!(
            c.scopes,
            ["read"],
            "a cut scope could match a required one: left out"
        );
        assert_eq!(c.truncated, ["scp"]);
    }

    #[test]
    fn the_act_chain_is_read_outermost_first() {
        let c = TokenClaims::from_json(&json!({
            "sub": "alice",
            "act": {
                "sub": "gateway", "iss": "https://as.example", "client_id": "gw",
                "act": {"sub": "billing", "act": {"client_id": "batch"}}
            }
        }));
        assert_eq!(c.actor.as_deref(), Some("gateway"));
        assert_eq!(
            c.delegation,
            [
                Delegate {
                    client_id: Some("gw".into()),
                    issuer: Some("https://as.example".into()),
                    subject: Some("gateway".into()),
                },
                Delegate {
                    subject: Some("billing".into()),
                    ..Delegate::default()
                },
                Delegate {
                    client_id: Some("batch".into()),
                    ..Delegate::default()
                },
            ]
        );
        assert!(c.truncated.is_empty());
        // Not RFC 8693 objects: the chain ends there, nothing is invented.
        let c = TokenClaims::from_json(&json!({"act": {"sub": "a", "act": "b"}}));
        assert_eq!(c.delegation.len(), 1);
        assert!(TokenClaims::from_json(&json!({"act": ["x"]}))
            .delegation
            .is_empty());
        assert!(TokenClaims::from_json(&json!({"sub": "x"}))
            .delegation
            .is_empty());
    }

    #[test]
    fn a_deep_or_huge_act_chain_is_bounded() {
        let mut act = json!({"sub": "first"});
        for depth in 1..100 {
            act = json!({"sub": format!("\u{1b}[31m{depth}{}", "x".repeat(5_000)), "iss": "y".repeat(9_000), "act": act});
        }
        let c = TokenClaims::from_json(&json!({"sub": "alice", "act": act}));
        assert_eq!(c.delegation.len(), MAX_DELEGATION_DEPTH);
        for delegate in &c.delegation {
            let subject = delegate.subject.as_deref().unwrap();
            assert_eq!(subject.len(), MAX_CLAIM_BYTES);
            assert!(!subject.chars().any(char::is_control));
            assert_eq!(delegate.issuer.as_deref().unwrap().len(), MAX_CLAIM_BYTES);
        }
        assert_eq!(c.truncated, ["act"]);
        // Exactly the limit is not a cut.
        let mut act = json!({"sub": "a0"});
        for depth in 1..MAX_DELEGATION_DEPTH {
            act = json!({"sub": format!("a{depth}"), "act": act});
        }
        let c = TokenClaims::from_json(&json!({"act": act}));
        assert_eq!(c.delegation.len(), MAX_DELEGATION_DEPTH);
        assert_eq!(c.delegation[0].subject.as_deref(), Some("a7"));
        assert_eq!(c.delegation[7].subject.as_deref(), Some("a0"));
        assert!(c.truncated.is_empty());
    }

    mod prop {
        use super::super::*;
        use crate::token::{TokenFormat, TokenInspector, Verdict};
        use base64::Engine;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                "(?s).{0,300}".prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 64, 8, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..80).prop_map(Value::from),
                    proptest::collection::btree_map(
                        prop_oneof![
                            Just("sub".to_owned()),
                            Just("username".to_owned()),
                            Just("scope".to_owned()),
                            Just("scp".to_owned()),
                            Just("aud".to_owned()),
                            Just("exp".to_owned()),
                            Just("client_id".to_owned()),
                            Just("act".to_owned()),
                            "[a-z]{1,6}",
                        ],
                        inner,
                        0..10
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn bounded(claims: &TokenClaims) -> Result<(), TestCaseError> {
            prop_assert!(claims.scopes.len() <= MAX_SCOPES);
            prop_assert!(claims.audience.len() <= MAX_AUDIENCES);
            prop_assert!(claims.delegation.len() <= MAX_DELEGATION_DEPTH);
            let delegates = claims
                .delegation
                .iter()
                .flat_map(|d| [&d.subject, &d.issuer, &d.client_id])
                .flatten();
            for text in claims
                .scopes
                .iter()
                .chain(&claims.audience)
                .chain(&claims.subject)
                .chain(&claims.client_id)
                .chain(&claims.jti)
                .chain(&claims.issuer)
                .chain(&claims.actor)
                .chain(delegates)
            {
                prop_assert!(text.len() <= MAX_CLAIM_BYTES);
                prop_assert!(!text.chars().any(char::is_control), "{text:?}");
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            #[test]
            fn the_claims_reader_is_bounded_and_deterministic(value in json_value()) {
                let claims = TokenClaims::from_json(&value);
                bounded(&claims)?;
                prop_assert_eq!(&claims, &TokenClaims::from_json(&value));
            }

            /// A payload's claims picked out as it is parsed read as the whole payload read
            /// into a `Value` does (an object: anything else has no claims).
            #[test]
            fn claims_picked_while_parsing_read_as_the_whole_payload(value in json_value()) {
                let text = serde_json::to_vec(&value).unwrap();
                let expected = if value.is_object() {
                    TokenClaims::from_json(&value)
                } else {
                    TokenClaims::default()
                };
                prop_assert_eq!(super::from_body(&text), expected);
            }

            /// The inspector on arbitrary tokens: never panics, bounded claims, the same
            /// verdict twice (cache or not), and nothing is `valid` without a key.
            #[test]
            fn the_inspector_survives_arbitrary_tokens(
                raw in prop_oneof![
                    "[ -~]{0,200}",
                    (json_value(), json_value(), "[A-Za-z0-9_-]{0,40}").prop_map(|(h, p, sig)| {
                        let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(v.to_string());
                        format!("{}.{}.{sig}", b64(&h), b64(&p))
                    }),
                ]
            ) {
                let decoding = TokenInspector::default();
                let verifying = TokenInspector::builder()
                    .hmac_secret(jsonwebtoken::Algorithm::HS256, b"a-32-byte-long-secret-for-hs256!")
                    .build()
                    .unwrap();
                for inspector in [&decoding, &verifying] {
                    let seen = inspector.inspect(&raw);
                    bounded(&seen.claims)?;
                    // A JWT opens with a JOSE header (a JSON object) and a dot.
                    let jose = raw.split_once('.').is_some_and(|(header, _)| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(header.trim_end_matches('='))
                            .ok()
                            .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
                            .is_some_and(|header| header.is_object())
                    });
                    prop_assert_eq!(seen.format == TokenFormat::Jwt, jose, "{}", raw);
                    prop_assert_ne!(seen.verdict, Verdict::Valid);
                    prop_assert_eq!(inspector.inspect(&raw).verdict, seen.verdict);
                }
            }
        }
    }
}
