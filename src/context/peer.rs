use std::net::{IpAddr, SocketAddr};

use http::Extensions;

use crate::event::CompactString;

/// The socket peer of a connection, for servers that are not Axum.
///
/// Insert it into each request's extensions (a plain `SocketAddr` extension works too) and
/// the layer uses it as the socket peer. With the `axum` feature, Axum's
/// `ConnectInfo<SocketAddr>` is read as well.
///
/// ```
/// use oauth_audit::PeerAddr;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(PeerAddr("192.0.2.1:4711".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

pub(crate) fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(addr.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The request's target as the client sent it. With Axum, the routes of a router nested in
/// another (`Router::nest`) are handed the URI without the prefix it matched (`/orders` for
/// `/api/orders`), so a layer on the nested router would read another path than the
/// request's; the outermost router keeps the target it was given as `OriginalUri`.
pub(crate) fn original_uri<B>(request: &http::Request<B>) -> &http::Uri {
    #[cfg(feature = "axum")]
    if let Some(axum::extract::OriginalUri(uri)) = request.extensions().get() {
        return uri;
    }
    request.uri()
}

/// The route template that matched, when the framework says.
pub(crate) fn matched_route(extensions: &Extensions) -> Option<CompactString> {
    #[cfg(feature = "axum")]
    if let Some(path) = extensions.get::<axum::extract::MatchedPath>() {
        return Some(path.as_str().into());
    }
    let _ = extensions;
    None
}
