//! The HTTP client for calls to the identity provider: HTTPS only (plain HTTP
//! only to a loopback address in development), short timeouts, no redirects
//! (a redirect could point the service at an internal address), and a cap
//! on response size (a hostile or broken provider cannot exhaust memory).

use std::{future::Future, pin::Pin, time::Duration};

use anyhow::{Context, bail};
use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use url::{Host, Url};

/// Discovery documents, key sets and token responses are a few KiB.
const MAX_BODY_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allow_loopback_http: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct OutboundError(#[from] anyhow::Error);

/// How long a call may take to connect, and in all.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), total: Duration::from_secs(10) }
    }
}

impl Outbound {
    pub fn new(allow_loopback_http: bool, timeouts: Timeouts) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .build()?;
        Ok(Self { client, allow_loopback_http })
    }

    /// Refuses URLs the service must not call.
    pub fn check(&self, url: &Url) -> anyhow::Result<()> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.allow_loopback_http && is_loopback(url) => Ok(()),
            _ => bail!("refusing to call {url}: only https (or http to loopback in development)"),
        }
    }

    pub async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> anyhow::Result<T> {
        self.check(url)?;
        let response = self.client.get(url.clone()).header("accept", "application/json").send().await?;
        if !response.status().is_success() {
            bail!("{url} answered {}", response.status());
        }
        let body = read_capped(response).await?;
        serde_json::from_slice(&body).with_context(|| format!("{url} did not answer the expected JSON"))
    }

    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        let url = Url::parse(&request.uri().to_string())?;
        self.check(&url)?;
        let response = self.client.execute(reqwest::Request::try_from(request)?).await?;
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = read_capped(response).await?;
        Ok(builder.body(body)?)
    }
}

/// Lets the `oauth2` crate exchange codes through this client.
impl<'c> AsyncHttpClient<'c> for Outbound {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move { self.execute(request).await.map_err(OutboundError) })
    }
}

async fn read_capped(mut response: reqwest::Response) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            bail!("response from {} exceeds {MAX_BODY_BYTES} bytes", response.url());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_in_development_is_called() {
        let development = Outbound::new(true, Timeouts::default()).expect("client");
        let production = Outbound::new(false, Timeouts::default()).expect("client");
        let url = |text: &str| Url::parse(text).expect("url");
        assert!(development.check(&url("https://login.example.com/x")).is_ok());
        assert!(development.check(&url("http://127.0.0.1:9000/x")).is_ok());
        assert!(development.check(&url("http://localhost:9000/x")).is_ok());
        assert!(development.check(&url("http://login.example.com/x")).is_err());
        assert!(development.check(&url("http://10.0.0.1/x")).is_err());
        assert!(production.check(&url("http://127.0.0.1:9000/x")).is_err());
        assert!(production.check(&url("file:///etc/passwd")).is_err());
    }
}
