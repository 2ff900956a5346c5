//! The client's address, resolved once per request: the connection's peer
//! or, when the peer is one of `server.trusted_proxies`, the address that
//! proxy reports in its forwarding header. Rate limits, login throttling
//! and the request's log lines all use this one value.
//!
//! Each proxy appends the address it received the request from, so a
//! header reads `what-the-client-claims…, client, proxy1, proxy2`, and only
//! what our own proxies appended can be believed. It is read from the
//! right, skipping trusted proxies; the first other address is the client.
//! Whatever the client wrote itself lies further left and is never read,
//! so a forged `X-Forwarded-For` changes nothing. Only the header the
//! proxies are configured to set is read (`server.client_address_header`):
//! a proxy passes the other one through from the client untouched.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts, Request, State},
    http::{HeaderMap, header, request::Parts},
    middleware::Next,
    response::Response,
};

use super::ApiError;
use crate::config::{ClientAddressHeader, ServerConfig};

/// The resolved client address, for handlers that need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Resolves the client address of every request and records it in the
/// request's span.
pub async fn middleware(
    State(server): State<Arc<ServerConfig>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = resolve(peer.ip(), request.headers(), &server);
        tracing::Span::current().record("client", tracing::field::display(client));
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Self>()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("the server recorded no peer address").into())
    }
}

/// The client behind `peer`, as described in the module documentation.
#[must_use]
pub fn resolve(peer: IpAddr, headers: &HeaderMap, server: &ServerConfig) -> IpAddr {
    let mut client = peer.to_canonical();
    if !server.is_trusted_proxy(client) {
        return client;
    }
    for hop in forwarded_hops(headers, server.client_address_header).into_iter().rev() {
        // An entry that is no address ("unknown", an obfuscated name, a
        // typo) ends the chain: what lies left of it cannot be placed.
        let Some(address) = hop else { return client };
        client = address.to_canonical();
        if !server.is_trusted_proxy(client) {
            return client;
        }
    }
    client
}

/// The addresses in the forwarding header, leftmost first; `None` for an
/// entry that is not an address.
fn forwarded_hops(headers: &HeaderMap, kind: ClientAddressHeader) -> Vec<Option<IpAddr>> {
    let name = match kind {
        ClientAddressHeader::XForwardedFor => "x-forwarded-for",
        ClientAddressHeader::Forwarded => header::FORWARDED.as_str(),
    };
    let mut hops = Vec::new();
    for value in headers.get_all(name) {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            hops.push(match kind {
                ClientAddressHeader::XForwardedFor => parse_node(element),
                // `for=192.0.2.1;proto=https`: the `for` parameter names the node.
                ClientAddressHeader::Forwarded => element.split(';').find_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    key.trim().eq_ignore_ascii_case("for").then(|| parse_node(value)).flatten()
                }),
            });
        }
    }
    hops
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `"[2001:db8::1]:4711"`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| node.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::config::Config;

    fn server(trusted: &[&str], kind: &str) -> ServerConfig {
        let figment = Config::defaults()
            .merge(("server.trusted_proxies", trusted))
            .merge(("server.client_address_header", kind));
        Config::from_figment(&figment).expect("configuration").server
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let server = server(&["10.0.0.0/8"], "x-forwarded-for");
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(resolve(ip("198.51.100.7"), &forged, &server), ip("198.51.100.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let server = server(&["10.0.0.0/8", "127.0.0.1/32"], "x-forwarded-for");
        // The client forged the first entry; the proxies appended the rest.
        let chain = headers("x-forwarded-for", &["203.0.113.9, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(resolve(ip("127.0.0.1"), &chain, &server), ip("198.51.100.7"));
        let no_header = HeaderMap::new();
        assert_eq!(resolve(ip("127.0.0.1"), &no_header, &server), ip("127.0.0.1"));
        let garbage = headers("x-forwarded-for", &["203.0.113.9, not-an-address"]);
        assert_eq!(resolve(ip("10.9.9.9"), &garbage, &server), ip("10.9.9.9"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let reads_forwarded = server(&["127.0.0.1/32"], "forwarded");
        let both = {
            let mut headers = headers("x-forwarded-for", &["203.0.113.9"]);
            headers.append(
                header::FORWARDED,
                HeaderValue::from_static("for=\"[2001:db8::7]:4711\";proto=https"),
            );
            headers
        };
        assert_eq!(resolve(ip("127.0.0.1"), &both, &reads_forwarded), ip("2001:db8::7"));
        let reads_x_forwarded_for = server(&["127.0.0.1/32"], "x-forwarded-for");
        assert_eq!(resolve(ip("127.0.0.1"), &both, &reads_x_forwarded_for), ip("203.0.113.9"));
    }

    #[test]
    fn ipv4_mapped_peers_are_plain_ipv4() {
        let server = server(&["127.0.0.1/32"], "x-forwarded-for");
        let chain = headers("x-forwarded-for", &["::ffff:198.51.100.7"]);
        assert_eq!(resolve(ip("::ffff:127.0.0.1"), &chain, &server), ip("198.51.100.7"));
    }
}
