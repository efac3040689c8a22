//! Credentials from an HTTP endpoint: `ALIBABA_CLOUD_CREDENTIALS_URI`, or the CLI profile mode
//! `CredentialsURI`.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use zeroize::Zeroizing;

use super::body::{BodyError, read_secret_body};
use super::ecs::{MAX_BODY_BYTES, http_client, parse_credentials_json, shown};
use super::{Credentials, CredentialsErrorKind, CredentialsFuture, CredentialsProvider, Env};
use crate::error::Error;

/// The variable holding the credentials URI.
pub(crate) const CREDENTIALS_URI: &str = "ALIBABA_CLOUD_CREDENTIALS_URI";
/// Provider name carried by the credentials this provider returns.
pub(crate) const PROVIDER_NAME: &str = "credential_uri";

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Credentials served by an HTTP endpoint that answers
/// `{"Code":"Success","AccessKeyId":"...","AccessKeySecret":"...","SecurityToken":"...","Expiration":"2021-09-26T03:46:38Z"}`.
///
/// Slot 6, the last, of the official default chain, which takes part only when
/// `ALIBABA_CLOUD_CREDENTIALS_URI` is set ([`UriProvider::from_env`]); also the CLI profile mode
/// `CredentialsURI` (`credentials_uri`, [`UriProvider::new`]).
///
/// One `GET` per fetch; a status other than 200 is an error ("unavailable"); `Code` must be
/// `Success`; `SecurityToken` is optional (without it the credentials are a plain AccessKey), but
/// a token needs an `Expiration`. The URL must be `http://` or `https://`; it may carry user
/// information or a query (both may be secrets, so errors and `Debug` show only its scheme, host
/// and port). No proxy, no redirect, a 5 s connect and a 10 s read timeout (configurable), the
/// answer read up to 64 KiB.
///
/// ```no_run
/// use aliyun_guard::credentials::{CredentialsProvider, Env, UriProvider};
///
/// # async fn run() -> Result<(), aliyun_guard::Error> {
/// // As the default chain does: ALIBABA_CLOUD_CREDENTIALS_URI, else "not configured".
/// let creds = UriProvider::from_env(Env::process()).provide_credentials().await?;
/// assert_eq!(creds.provider_name(), "credential_uri");
///
/// // A fixed URI, as a CLI profile of mode CredentialsURI gives it:
/// let provider = UriProvider::new("http://127.0.0.1:8080/credentials");
/// # let _ = provider;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct UriProvider {
    source: Source,
    connect_timeout: Duration,
    read_timeout: Duration,
    http: OnceLock<reqwest::Client>,
}

#[derive(Clone)]
enum Source {
    Fixed(Zeroizing<String>),
    Env(Env),
}

impl fmt::Debug for UriProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uri = match &self.source {
            Source::Fixed(uri) => match url::Url::parse(uri.trim()) {
                Ok(url) => origin(&url),
                Err(_) => "<invalid>".to_string(),
            },
            Source::Env(_) => format!("${CREDENTIALS_URI}"),
        };
        f.debug_struct("UriProvider")
            .field("uri", &uri)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

impl UriProvider {
    /// Fetches from `uri` (checked at the first fetch).
    pub fn new(uri: impl Into<String>) -> Self {
        Self::with_source(Source::Fixed(Zeroizing::new(uri.into())))
    }

    /// Fetches from `ALIBABA_CLOUD_CREDENTIALS_URI`, read from `env` at every fetch; unset or
    /// empty: "not configured".
    pub fn from_env(env: Env) -> Self {
        Self::with_source(Source::Env(env))
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            http: OnceLock::new(),
        }
    }

    /// Sets the connect timeout (default 5 s) and the read timeout (default 10 s). A whole
    /// request is also bounded by the connect timeout plus twice the read timeout.
    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.connect_timeout = connect;
        self.read_timeout = read;
        self.http = OnceLock::new();
        self
    }

    /// The URI and a description of where it came from.
    fn uri(&self) -> Result<(Zeroizing<String>, &'static str), Error> {
        match &self.source {
            Source::Fixed(uri) => Ok((uri.clone(), "the credentials URI")),
            Source::Env(env) => match env.get(CREDENTIALS_URI) {
                Some(uri) => Ok((Zeroizing::new(uri), CREDENTIALS_URI)),
                None => Err(Error::credentials_not_configured(format!(
                    "credentials URI: {CREDENTIALS_URI} is not set"
                ))),
            },
        }
    }

    fn http(&self) -> Result<&reqwest::Client, Error> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = http_client(self.connect_timeout, self.read_timeout).map_err(|e| {
            Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                "credentials URI: cannot build the HTTP client",
                Some(Box::new(e.without_url())),
            )
        })?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn fetch(&self) -> Result<Credentials, Error> {
        let (raw, source) = self.uri()?;
        let url = check_uri(&raw, source)?;
        let shown_uri = origin(&url);
        let http = self.http()?;
        let unavailable = |what: String, e: Option<reqwest::Error>| {
            Error::credentials_kind(
                CredentialsErrorKind::Unavailable,
                format!("credentials URI {shown_uri}: {what}"),
                e.map(|e| Box::new(e.without_url()) as _),
            )
        };
        let describe = |e: &reqwest::Error| {
            if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "the request failed"
            }
        };
        let mut response = match http.get(url).send().await {
            Ok(response) => response,
            Err(e) => return Err(unavailable(describe(&e).to_string(), Some(e))),
        };
        let status = response.status().as_u16();
        if status != 200 {
            return Err(unavailable(format!("answered HTTP {status}"), None));
        }
        let body = match read_secret_body(&mut response, MAX_BODY_BYTES).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Err(unavailable(
                    format!("answered more than {MAX_BODY_BYTES} bytes"),
                    None,
                ));
            }
            Err(BodyError::Transport(e)) => {
                return Err(unavailable(
                    format!("reading the answer: {}", describe(&e)),
                    Some(e),
                ));
            }
        };
        let creds = parse_credentials_json(&body, false).map_err(|why| unavailable(why, None))?;
        let creds = creds.with_provider_name(PROVIDER_NAME);
        tracing::debug!(
            provider = PROVIDER_NAME,
            key = %creds.masked_key_id(),
            "credentials obtained"
        );
        Ok(creds)
    }
}

impl CredentialsProvider for UriProvider {
    fn provide_credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }
}

/// Parses and checks the URI; the error never repeats it (it may hold a password or a token).
fn check_uri(raw: &str, source: &str) -> Result<url::Url, Error> {
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        Error::credentials_invalid(format!(
            "credentials URI: {source} is not a valid URL ({e})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::credentials_invalid(format!(
            "credentials URI: {source} must use http:// or https://, not {}",
            shown(url.scheme())
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::credentials_invalid(format!(
            "credentials URI: {source} has no host"
        )));
    }
    Ok(url)
}

/// `scheme://host[:port]`: what of a credentials URI may be shown.
fn origin(url: &url::Url) -> String {
    let host = match url.host() {
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheme_host_and_port_are_shown() {
        let url = url::Url::parse("https://user:pa55@creds.internal:8443/path?token=abc").unwrap();
        assert_eq!(origin(&url), "https://creds.internal:8443");
        let provider = UriProvider::new("http://user:pa55@127.0.0.1:9/x?token=abc");
        let debug = format!("{provider:?}");
        assert!(debug.contains("http://127.0.0.1:9"), "{debug}");
        assert!(!debug.contains("pa55") && !debug.contains("abc"), "{debug}");
    }

    #[test]
    fn only_http_and_https() {
        for bad in ["file:///etc/passwd", "ftp://host/x", "not a url", "http://"] {
            let err = check_uri(bad, "the URI").unwrap_err();
            assert!(!err.is_not_configured(), "{bad}: {err}");
        }
        assert!(check_uri(" https://host/x ", "the URI").is_ok());
    }
}
