//! An event's canonical JSON written member by member, where serde would go through a
//! `serialize_field` call, a key order check and an escaping scan of the key for every
//! member: the parts every event has (the envelope, `http`, `scopes`, `service`, an owned
//! `actor` or `token`, `error`, `source`) are written here with their keys as literals,
//! quotes, colon and all, and so are the event's id, kind, outcome, severity and times, a
//! token's fingerprint, format, verdict and `active`, the actor's kind and the client's
//! authentication method. A shared part's remembered JSON is copied here directly.
//! Everything else (addresses, the rarer objects and enums) goes through the serde path as
//! before.
//!
//! The bytes are the serde path's, byte for byte: the tests below write thousands of
//! events both ways. Each struct is taken apart without `..`, so a field added to the
//! model does not compile here until it is written here too. A changed `skip_serializing_if`
//! or `rename` in the model does compile: the property test is what catches it, since it
//! makes every field both present and absent, and empty where the model leaves empty values
//! out.

use serde::Serialize;
use uuid::Uuid;

use super::canonical::{append_to, write_str, Canonical, Canonicalizer, Error};
use super::{
    Actor, ActorKind, AuditEvent, ClientAuth, ErrorInfo, HttpInfo, OAuthDetails, Scopes,
    ServiceInfo, Shared, Source, Timestamp, TokenDetails, TokenSentIn, UnverifiedClaims,
};
use crate::token::{TokenFingerprint, TokenFormat, Verdict};

/// [`append_canonical_json`](super::append_canonical_json) of an event: the same bytes,
/// written member by member. What every sink writes.
pub(crate) fn append_event_json(buf: &mut Vec<u8>, event: &AuditEvent) -> Result<(), Error> {
    append_to(buf, |canonical| append_event(canonical, event))
}

/// [`canonical_json`](super::canonical_json) of an event, written member by member.
pub(crate) fn event_json(event: &AuditEvent) -> Result<Vec<u8>, Error> {
    let mut canonical = Canonical::default();
    append_event(&mut canonical, event)?;
    Ok(canonical.out)
}

impl Canonicalizer {
    /// [`Canonicalizer::write`] of an event, written member by member.
    pub(crate) fn write_event(&mut self, event: &AuditEvent) -> Result<&[u8], Error> {
        self.0.out.clear();
        append_event(&mut self.0, event)?;
        Ok(&self.0.out)
    }
}

/// Writes `event` after what `c.out` holds. Should a struct inside come out of order (never
/// the model's own), the event is written again the serde way, which notes every struct's
/// entries to put them in order.
fn append_event(c: &mut Canonical, event: &AuditEvent) -> Result<(), Error> {
    let from = c.out.len();
    c.start(from, false);
    let written = write(c, event);
    #[cfg(test)]
    {
        c.again |= c.pretend_out_of_order;
    }
    if !c.again {
        return written;
    }
    c.start(from, true);
    event.serialize(&mut *c)
}

/// `"name":`, the way a member's key is written.
macro_rules! key {
    ($name:literal) => {
        concat!("\"", $name, "\":").as_bytes()
    };
}

/// The members of one object, written in the order given (which must be key order: the
/// tests hold every object to the serde path's output).
struct Members<'c> {
    c: &'c mut Canonical,
    empty: bool,
}

impl<'c> Members<'c> {
    #[inline(always)]
    fn open(c: &'c mut Canonical) -> Self {
        c.out.push(b'{');
        Members { c, empty: true }
    }

    #[inline(always)]
    fn key(&mut self, key: &'static [u8]) -> &mut Canonical {
        if !std::mem::take(&mut self.empty) {
            self.c.out.push(b',');
        }
        self.c.out.extend_from_slice(key);
        self.c
    }

    #[inline(always)]
    fn str(&mut self, key: &'static [u8], value: &str) {
        write_str(&mut self.key(key).out, value);
    }

    #[inline(always)]
    fn opt_str(&mut self, key: &'static [u8], value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    fn strs(&mut self, key: &'static [u8], values: &[String]) {
        write_strs(&mut self.key(key).out, values);
    }

    /// A part that may be shared with other events: the JSON it remembers when it is
    /// (copied here directly, where the serde path hands the part over through a
    /// thread-local offer), else written by `own`. A shared part written for the first time
    /// is written by `own` too, and remembered: a new token's parts cost this writer's work,
    /// not the serde path's.
    #[inline(always)]
    fn shared<T: Serialize + Send + Sync + 'static>(
        &mut self,
        key: &'static [u8],
        value: &Shared<T>,
        own: impl FnOnce(&mut Canonical, &T) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Some(part) = value.rendered() else {
            return own(self.key(key), value);
        };
        let c = self.key(key);
        if let Some(bytes) = part.remembered() {
            c.out.extend_from_slice(bytes);
            return Ok(());
        }
        let from = c.out.len();
        own(c, value)?;
        // A writer that met something out of order (here or before) leaves the event to the
        // serde path, which writes the part again and remembers what it writes.
        if !c.again {
            part.remember(&c.out[from..]);
        }
        Ok(())
    }

    /// A string known to need no escaping (a name of this crate's, a number or id written
    /// out), between quotes.
    #[inline(always)]
    fn plain(&mut self, key: &'static [u8], value: &str) {
        debug_assert!(
            value.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'),
            "{value:?} needs escaping"
        );
        self.quoted(key, value.as_bytes());
    }

    /// A literal (`true`, `false`), unquoted, when there is one.
    #[inline(always)]
    fn opt_plain_literal(&mut self, key: &'static [u8], value: Option<&'static str>) {
        if let Some(value) = value {
            self.key(key).out.extend_from_slice(value.as_bytes());
        }
    }

    /// [`plain`](Self::plain), when there is a value.
    #[inline(always)]
    fn opt_plain(&mut self, key: &'static [u8], value: Option<&str>) {
        if let Some(value) = value {
            self.plain(key, value);
        }
    }

    /// `bytes` between quotes, as they are.
    #[inline(always)]
    fn quoted(&mut self, key: &'static [u8], bytes: &[u8]) {
        let out = &mut self.key(key).out;
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    }

    /// A time, as its `Serialize` writes it: its RFC 3339 text, or chrono's for the rare
    /// time that text leaves to chrono.
    #[inline(always)]
    fn time(&mut self, key: &'static [u8], value: &Timestamp) -> Result<(), Error> {
        match value.text() {
            Some(text) => {
                // Digits and separators: nothing to escape.
                self.quoted(key, text.as_bytes());
                Ok(())
            }
            None => self.serde(key, value),
        }
    }

    fn opt_time(&mut self, key: &'static [u8], value: &Option<Timestamp>) -> Result<(), Error> {
        match value {
            Some(value) => self.time(key, value),
            None => Ok(()),
        }
    }

    /// An id, hyphenated in lower case as `Uuid`'s `Serialize` writes it.
    #[inline(always)]
    fn uuid(&mut self, key: &'static [u8], value: &Uuid) {
        // Hex digits and hyphens: nothing to escape.
        self.quoted(key, &super::uuid_text::hyphenated(value));
    }

    /// A member written the serde way.
    fn serde<T: Serialize + ?Sized>(&mut self, key: &'static [u8], value: &T) -> Result<(), Error> {
        value.serialize(self.key(key))
    }

    /// A map of strings (`labels`, `source.forwarded_headers`). With every key ASCII (header
    /// names always), the map's own order is RFC 8785's and the members are written as they
    /// come; otherwise through serde, which sorts the keys by their UTF-16 code units.
    fn str_map(
        &mut self,
        key: &'static [u8],
        map: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), Error> {
        if !map.keys().all(|name| name.is_ascii()) {
            return self.serde(key, map);
        }
        let out = &mut self.key(key).out;
        out.push(b'{');
        for (index, (name, value)) in map.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            write_str(out, name);
            out.push(b':');
            write_str(out, value);
        }
        out.push(b'}');
        Ok(())
    }

    fn opt_serde<T: Serialize>(
        &mut self,
        key: &'static [u8],
        value: &Option<T>,
    ) -> Result<(), Error> {
        match value {
            Some(value) => self.serde(key, value),
            None => Ok(()),
        }
    }

    #[inline(always)]
    fn close(self) {
        self.c.out.push(b'}');
    }
}

/// A list of strings.
fn write_strs(out: &mut Vec<u8>, values: &[String]) {
    out.push(b'[');
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(out, value);
    }
    out.push(b']');
}

/// A shared list's own writer, for [`Members::shared`] (which hands it the `Vec` it shares).
#[allow(clippy::ptr_arg)]
fn own_strs(c: &mut Canonical, values: &Vec<String>) -> Result<(), Error> {
    write_strs(&mut c.out, values);
    Ok(())
}

/// Writes `event` as RFC 8785 JSON after what `c.out` holds.
fn write(c: &mut Canonical, event: &AuditEvent) -> Result<(), Error> {
    let AuditEvent {
        actor,
        alert,
        chain,
        checkpoint,
        client_auth,
        dropped,
        error,
        grant_type,
        http,
        id,
        kind,
        labels,
        oauth,
        outcome,
        redirect_uri,
        refresh_token,
        request_id,
        schema,
        scopes,
        service,
        severity,
        source,
        span_id,
        time,
        token,
        trace_id,
        json: _,
    } = event;
    let mut m = Members::open(c);
    if !actor.is_empty() {
        m.shared(key!("actor"), actor, write_actor)?;
    }
    m.opt_serde(key!("alert"), alert)?;
    m.opt_serde(key!("chain"), chain)?;
    m.opt_serde(key!("checkpoint"), checkpoint)?;
    m.opt_plain(key!("client_auth"), client_auth.map(ClientAuth::as_str));
    m.opt_serde(key!("dropped"), dropped)?;
    if let Some(error) = error {
        write_error(m.key(key!("error")), error);
    }
    m.opt_str(key!("grant_type"), grant_type.as_deref());
    if let Some(http) = http {
        write_http(m.key(key!("http")), http);
    }
    m.uuid(key!("id"), id);
    m.plain(key!("kind"), kind.as_str());
    if !labels.is_empty() {
        m.str_map(key!("labels"), labels)?;
    }
    if !oauth.as_deref().is_none_or(OAuthDetails::is_empty) {
        m.serde(key!("oauth"), oauth)?;
    }
    m.plain(key!("outcome"), outcome.as_str());
    m.opt_str(key!("redirect_uri"), redirect_uri.as_deref());
    m.opt_serde(key!("refresh_token"), refresh_token)?;
    m.opt_str(key!("request_id"), request_id.as_deref());
    m.str(key!("schema"), schema);
    if !scopes.is_empty() {
        write_scopes(m.key(key!("scopes")), scopes)?;
    }
    write_service(m.key(key!("service")), service);
    m.plain(key!("severity"), severity.as_str());
    if let Some(source) = source.as_ref().filter(|s| !s.is_empty()) {
        write_source(m.key(key!("source")), source)?;
    }
    m.opt_str(key!("span_id"), span_id.as_deref());
    m.time(key!("time"), time)?;
    if let Some(token) = token {
        m.shared(key!("token"), token, write_token)?;
    }
    m.opt_str(key!("trace_id"), trace_id.as_deref());
    m.close();
    Ok(())
}

fn write_actor(c: &mut Canonical, actor: &Actor) -> Result<(), Error> {
    let Actor {
        client_id,
        delegation,
        kind,
        subject,
    } = actor;
    let mut m = Members::open(c);
    m.opt_str(key!("client_id"), client_id.as_deref());
    if !delegation.is_empty() {
        m.serde(key!("delegation"), delegation)?;
    }
    m.opt_plain(key!("kind"), kind.map(ActorKind::as_str));
    m.opt_str(key!("subject"), subject.as_deref());
    m.close();
    Ok(())
}

fn write_error(c: &mut Canonical, error: &ErrorInfo) {
    let ErrorInfo { code, description } = error;
    let mut m = Members::open(c);
    m.str(key!("code"), code);
    m.opt_str(key!("description"), description.as_deref());
    m.close();
}

fn write_http(c: &mut Canonical, http: &HttpInfo) {
    let HttpInfo {
        duration_ms,
        method,
        path,
        route,
        status,
    } = http;
    let mut m = Members::open(c);
    m.key(key!("duration_ms")).write_f64(*duration_ms);
    if !method.is_empty() {
        m.str(key!("method"), method);
    }
    if !path.is_empty() {
        m.str(key!("path"), path);
    }
    m.opt_str(key!("route"), route.as_deref());
    if let Some(status) = status {
        m.key(key!("status")).write_u64(u64::from(*status));
    }
    m.close();
}

fn write_scopes(c: &mut Canonical, scopes: &Scopes) -> Result<(), Error> {
    let Scopes {
        granted,
        missing,
        requested,
        required,
        used,
    } = scopes;
    let mut m = Members::open(c);
    if let Some(granted) = granted {
        m.shared(key!("granted"), granted, own_strs)?;
    }
    if let Some(missing) = missing {
        m.strs(key!("missing"), missing);
    }
    if let Some(requested) = requested {
        m.strs(key!("requested"), requested);
    }
    if let Some(required) = required {
        m.shared(key!("required"), required, own_strs)?;
    }
    if let Some(used) = used {
        m.shared(key!("used"), used, own_strs)?;
    }
    m.close();
    Ok(())
}

fn write_service(c: &mut Canonical, service: &ServiceInfo) {
    let ServiceInfo { instance, name } = service;
    let mut m = Members::open(c);
    m.opt_str(key!("instance"), instance.as_deref());
    m.str(key!("name"), name);
    m.close();
}

fn write_source(c: &mut Canonical, source: &Source) -> Result<(), Error> {
    let Source {
        r#as,
        forwarded_for,
        forwarded_headers,
        geo,
        ip,
        user_agent,
    } = source;
    let mut m = Members::open(c);
    m.opt_serde(key!("as"), r#as)?;
    if !forwarded_for.is_empty() {
        m.strs(key!("forwarded_for"), forwarded_for);
    }
    if !forwarded_headers.is_empty() {
        m.str_map(key!("forwarded_headers"), forwarded_headers)?;
    }
    m.opt_serde(key!("geo"), geo)?;
    m.opt_serde(key!("ip"), ip)?;
    m.opt_str(key!("user_agent"), user_agent.as_deref());
    m.close();
    Ok(())
}

fn write_token(c: &mut Canonical, token: &TokenDetails) -> Result<(), Error> {
    let TokenDetails {
        active,
        audience,
        binding,
        client_id,
        expires_at,
        fingerprint,
        format,
        issued_at,
        issuer,
        jti,
        sent_in,
        subject,
        truncated,
        type_hint,
        unverified,
        verdict,
    } = token;
    let mut m = Members::open(c);
    m.opt_plain_literal(
        key!("active"),
        active.map(|active| if active { "true" } else { "false" }),
    );
    if !audience.is_empty() {
        m.strs(key!("audience"), audience);
    }
    m.opt_serde(key!("binding"), binding)?;
    m.opt_str(key!("client_id"), client_id.as_deref());
    m.opt_time(key!("expires_at"), expires_at)?;
    m.plain(
        key!("fingerprint"),
        fingerprint.text(&mut [0; TokenFingerprint::TEXT_LEN]),
    );
    m.opt_plain(key!("format"), format.map(TokenFormat::as_str));
    m.opt_time(key!("issued_at"), issued_at)?;
    m.opt_str(key!("issuer"), issuer.as_deref());
    m.opt_str(key!("jti"), jti.as_deref());
    m.opt_plain(key!("sent_in"), sent_in.map(TokenSentIn::as_str));
    m.opt_str(key!("subject"), subject.as_deref());
    if !truncated.is_empty() {
        m.serde(key!("truncated"), truncated)?;
    }
    m.opt_str(key!("type_hint"), type_hint.as_deref());
    if !unverified.as_deref().is_none_or(UnverifiedClaims::is_empty) {
        m.serde(key!("unverified"), unverified)?;
    }
    m.opt_plain(key!("verdict"), verdict.map(Verdict::as_str));
    m.close();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::option::of;
    use proptest::prelude::*;

    use super::super::canonical::tests::key_text;
    use super::super::canonical::Canonical;
    use super::{append_event, append_event_json, event_json};
    use crate::dpop::ProofOutcome;
    use crate::event::*;
    use crate::token::{Delegate, TokenFingerprint, TokenFormat, Verdict};

    fn texts() -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(key_text(), 0..3)
    }

    /// A value the event owns, or one shared with other events (written from the JSON it
    /// remembers).
    fn maybe_shared<T>(value: T, shared: bool) -> Shared<T> {
        if shared {
            Shared::new(value)
        } else {
            Shared::own(value)
        }
    }

    /// Any time from year 1 to 9999 to the microsecond, and some beyond (written by chrono).
    fn time() -> impl Strategy<Value = Timestamp> {
        prop_oneof![
            8 => -62_135_596_800_000_000i64..253_402_300_800_000_000,
            1 => 253_402_300_800_000_000i64..300_000_000_000_000_000,
        ]
        .prop_map(|micros| Timestamp::from_unix_micros(micros).unwrap())
    }

    prop_compose! {
        fn actor()(
            client_id in of(key_text()),
            subject in of(key_text()),
            kind in of(prop_oneof![
                Just(ActorKind::User),
                Just(ActorKind::Client),
                Just(ActorKind::Anonymous),
            ]),
            delegation in proptest::collection::vec((of(key_text()), of(key_text())), 0..3),
        ) -> Actor {
            Actor {
                client_id,
                delegation: delegation
                    .into_iter()
                    .map(|(subject, client_id)| Delegate {
                        subject,
                        client_id,
                        ..Delegate::default()
                    })
                    .collect(),
                kind,
                subject,
            }
        }
    }

    prop_compose! {
        fn token()(
            (active, audience, client_id, expires_at) in
                (of(any::<bool>()), texts(), of(key_text()), of(time())),
            (format, issued_at, issuer, jti) in (
                of(prop_oneof![Just(TokenFormat::Jwt), Just(TokenFormat::Opaque)]),
                of(time()),
                of(key_text()),
                of(key_text()),
            ),
            (subject, truncated, type_hint, unverified, verdict) in (
                of(key_text()),
                proptest::sample::subsequence(vec!["aud", "scope", "sub"], 0..=3),
                of(key_text()),
                of((of(key_text()), of(key_text()), texts())),
                of(prop_oneof![
                    Just(Verdict::Valid),
                    Just(Verdict::Expired),
                    Just(Verdict::BadSignature),
                    Just(Verdict::Unverified),
                ]),
            ),
            (binding, secret, in_query) in (of(binding()), key_text(), any::<bool>()),
        ) -> TokenDetails {
            let mut token = TokenDetails::from_fingerprint(TokenFingerprint::of(&secret));
            token.active = active;
            token.audience = audience;
            token.binding = binding.map(Box::new);
            token.client_id = client_id;
            token.expires_at = expires_at;
            token.format = format;
            token.issued_at = issued_at;
            token.issuer = issuer;
            token.jti = jti;
            token.sent_in = in_query.then_some(TokenSentIn::Query);
            token.subject = subject;
            token.truncated = truncated;
            token.type_hint = type_hint;
            // Present but empty (left out), or with claims.
            token.unverified = unverified.map(|(subject, client_id, scopes)| {
                Box::new(UnverifiedClaims {
                    client_id,
                    delegation: Vec::new(),
                    scopes,
                    subject,
                })
            });
            token.verdict = verdict;
            token
        }
    }

    prop_compose! {
        fn binding()(
            downgrade in any::<bool>(),
            keys in (of(key_text()), of(key_text()), of(key_text()), of(key_text())),
            mtls in any::<bool>(),
            proof in of(prop_oneof![Just(ProofOutcome::Valid), Just(ProofOutcome::Missing)]),
        ) -> TokenBinding {
            let (jkt, proof_jkt, proof_x5t_s256, x5t_s256) = keys;
            TokenBinding {
                downgrade,
                jkt,
                method: if mtls { BindingMethod::Mtls } else { BindingMethod::Dpop },
                proof,
                proof_jkt,
                proof_x5t_s256,
                x5t_s256,
            }
        }
    }

    prop_compose! {
        fn http()(
            duration_ms in prop_oneof![
                (0u64..10_000_000_000).prop_map(|us| us as f64 / 1000.0),
                any::<f64>().prop_filter("finite", |x| x.is_finite()),
            ],
            method in prop_oneof![Just(""), Just("GET"), Just("POST")],
            path in key_text(),
            route in of(key_text()),
            status in of(any::<u16>()),
        ) -> HttpInfo {
            HttpInfo { duration_ms, method: method.into(), path: path.into(), route: route.map(Into::into), status }
        }
    }

    prop_compose! {
        fn scopes()(
            lists in (of(texts()), of(texts()), of(texts()), of(texts()), of(texts())),
            shared in any::<[bool; 3]>(),
        ) -> Scopes {
            let (granted, missing, requested, required, used) = lists;
            Scopes {
                granted: granted.map(|s| maybe_shared(s, shared[0])),
                missing,
                requested,
                required: required.map(|s| maybe_shared(s, shared[1])),
                used: used.map(|s| maybe_shared(s, shared[2])),
            }
        }
    }

    prop_compose! {
        fn source()(
            ip in of(prop_oneof![
                any::<[u8; 4]>().prop_map(std::net::IpAddr::from),
                any::<[u16; 8]>().prop_map(std::net::IpAddr::from),
            ]),
            forwarded_for in texts(),
            forwarded_headers in proptest::collection::btree_map(key_text(), key_text(), 0..4),
            (asn, geo) in (of(of(key_text())), any::<bool>()),
            user_agent in of(key_text()),
        ) -> Source {
            Source {
                r#as: asn.map(|org| AutonomousSystem::new(64_500, org)),
                forwarded_for,
                forwarded_headers,
                geo: geo.then(|| Box::new(Geo::at(48.85, 2.35))),
                ip,
                user_agent,
            }
        }
    }

    prop_compose! {
        fn event()(
            (actor, shared_actor, token, shared_token) in
                (actor(), any::<bool>(), of(token()), any::<bool>()),
            (error, grant_type, http, labels) in (
                of((key_text(), of(key_text()))),
                of(key_text()),
                of(http()),
                proptest::collection::btree_map(key_text(), key_text(), 0..4),
            ),
            (oauth, redirect_uri, refresh, request_id) in (
                of((texts(), of(key_text()), of(any::<bool>()))),
                of(key_text()),
                of(of(binding())),
                of(key_text()),
            ),
            (alert, dropped, checkpoint, kind, client_auth) in (
                of((key_text(), of(key_text()))),
                of(key_text()),
                any::<bool>(),
                0usize..EventKind::ALL.len(),
                of(prop_oneof![
                    Just(ClientAuth::ClientSecretBasic),
                    Just(ClientAuth::ClientSecretPost),
                    Just(ClientAuth::None),
                ]),
            ),
            (scopes, instance, name, source) in
                (scopes(), of(key_text()), key_text(), of(source())),
            (span_id, trace_id, chained, outcome, time) in
                (of(key_text()), of(key_text()), any::<bool>(), 0usize..3, time()),
        ) -> AuditEvent {
            let service = Arc::new(ServiceInfo { instance, name });
            let kind = EventKind::ALL[kind];
            let outcome = [Outcome::Success, Outcome::Failure, Outcome::Unknown][outcome];
            let mut event = AuditEvent::new(service, time, kind, outcome);
            event.actor = maybe_shared(actor, shared_actor);
            event.alert = alert.map(|(rule, title)| {
                Box::new(Alert {
                    count: 3,
                    evidence: vec![rule.clone()],
                    first_seen: Some(time),
                    key: rule.clone(),
                    last_seen: None,
                    rule,
                    suppressed: None,
                    title,
                    travel: None,
                    window_s: 60,
                })
            });
            event.checkpoint = checkpoint.then(|| {
                Box::new(Checkpoint {
                    hash: EventHash::of_bytes(b"head"),
                    note: "note".into(),
                    seq: 9,
                    stream: "s".into(),
                })
            });
            event.client_auth = client_auth;
            event.dropped = dropped.map(|sink| {
                Box::new(Dropped {
                    count: 2,
                    ranges: Vec::new(),
                    reason: DropReason::QueueFull,
                    signature: None,
                    sink,
                })
            });
            event.error = error.map(|(code, description)| ErrorInfo { code, description });
            event.grant_type = grant_type;
            event.http = http;
            event.labels = labels;
            // Present but empty (left out), or with details.
            event.oauth = oauth.map(|(resource, reason, pushed)| {
                Box::new(OAuthDetails { resource, reason, pushed, ..OAuthDetails::default() })
            });
            event.redirect_uri = redirect_uri;
            event.refresh_token = refresh.map(|binding| {
                let mut token = TokenRef::new(TokenFingerprint::of("refresh"));
                token.binding = binding;
                Box::new(token)
            });
            event.request_id = request_id;
            event.scopes = scopes;
            event.source = source;
            event.span_id = span_id;
            event.token = token.map(|token| maybe_shared(token, shared_token));
            event.trace_id = trace_id;
            if chained {
                event.chain = Some(Box::new(ChainLink {
                    prev: Some(EventHash::of_bytes(b"prev")),
                    seq: 7,
                    stream: "s".into(),
                }));
            }
            event
        }
    }

    /// The names the writer takes from `as_str` are the ones serde writes, for every
    /// variant (the property test draws only some of them).
    #[test]
    fn names_written_directly_are_serdes() {
        use crate::token::{TokenFormat, Verdict};
        fn serde_name(value: impl serde::Serialize) -> String {
            serde_json::to_value(value)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }
        for verdict in Verdict::ALL {
            assert_eq!(verdict.as_str(), serde_name(verdict));
        }
        for format in [TokenFormat::Jwt, TokenFormat::Opaque] {
            assert_eq!(format.as_str(), serde_name(format));
        }
        for kind in [ActorKind::User, ActorKind::Client, ActorKind::Anonymous] {
            // A kind added to the enum must be added here: the match has no wildcard.
            match kind {
                ActorKind::User | ActorKind::Client | ActorKind::Anonymous => {}
            }
            assert_eq!(kind.as_str(), serde_name(kind));
        }
        // The client's authentication methods: `model.rs`'s
        // `client_auth_names_are_what_events_carry`.
    }

    #[test]
    fn an_event_found_out_of_order_is_written_again_the_serde_way() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        for _ in 0..200 {
            let event = event().new_tree(&mut runner).unwrap().current();
            let mut canonical = Canonical::default();
            canonical.out = b"x".to_vec();
            canonical.pretend_out_of_order = true;
            append_event(&mut canonical, &event).unwrap();
            assert_eq!(&canonical.out[..1], b"x", "what came before is kept");
            assert_eq!(&canonical.out[1..], &canonical_json(&event).unwrap()[..]);
            assert!(
                canonical.noting_fields,
                "the second pass noted every struct"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn writes_the_bytes_the_serde_path_writes(event in event()) {
            let serde = canonical_json(&event).unwrap();
            let fast = event_json(&event).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&serde));
            // After other bytes, and with a writer that has written before.
            let mut buf = b"x".to_vec();
            append_event_json(&mut buf, &event).unwrap();
            prop_assert_eq!(&buf[1..], &serde[..]);
            let mut reused = Canonicalizer::default();
            let warm_up =
                AuditEvent::dropped(event.service.clone(), 1, DropReason::QueueFull, "warm-up");
            prop_assert_eq!(
                reused.write_event(&warm_up).unwrap(),
                &canonical_json(&warm_up).unwrap()[..]
            );
            prop_assert_eq!(reused.write_event(&event).unwrap(), &serde[..]);
            // And shared parts, once rendered, are copied as they were rendered.
            prop_assert_eq!(&event_json(&event).unwrap(), &serde);
            // Shared parts met first by this writer are written by its own writers (and
            // remembered): the same bytes as the serde path's of the parts unshared.
            let fresh = with_parts(&event, true);
            let unshared = canonical_json(&with_parts(&event, false)).unwrap();
            prop_assert_eq!(&event_json(&fresh).unwrap(), &unshared);
            prop_assert_eq!(&serde, &unshared);
            // ... and the serde path copies what they remembered.
            prop_assert_eq!(&canonical_json(&fresh).unwrap(), &unshared);
        }
    }

    /// `event` with every part that may be shared made anew: shared with nothing remembered
    /// (`shared`), or the event's own.
    fn with_parts(event: &AuditEvent, shared: bool) -> AuditEvent {
        fn anew<T: Clone>(part: &Shared<T>, shared: bool) -> Shared<T> {
            let value = (**part).clone();
            if shared {
                Shared::new(value)
            } else {
                Shared::own(value)
            }
        }
        let mut event = event.clone();
        event.actor = anew(&event.actor, shared);
        event.token = event.token.as_ref().map(|token| anew(token, shared));
        let scopes = &mut event.scopes;
        for list in [&mut scopes.granted, &mut scopes.required, &mut scopes.used] {
            *list = list.as_ref().map(|list| anew(list, shared));
        }
        event
    }
}
