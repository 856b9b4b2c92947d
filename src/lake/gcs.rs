//! Google Cloud Storage through its JSON API: listing by prefix (with or without a delimiter),
//! ranged reads, and simple uploads (conditional on the generation when asked), each request with a timeout and retried with backoff on
//! 429, 5xx and network failures.
//!
//! object_store's own GCS client speaks the XML API, which GCS emulators do not serve; its
//! credential providers (service account, application-default credentials, metadata server) are
//! used here as they are.

use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::gcp::GcpCredentialProvider;
use object_store::path::Path;
use object_store::{
    Attributes, CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult,
    MultipartUpload, ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use crate::error::chain;

const STORE: &str = "GCS";

/// A bucket, reached at `base` (Google's endpoint, an emulator, or a private endpoint).
#[derive(Debug, Clone)]
pub struct Gcs {
    http: reqwest::Client,
    base: Url,
    bucket: String,
    /// None: anonymous, for public buckets and emulators.
    credentials: Option<GcpCredentialProvider>,
    retries: usize,
}

impl std::fmt::Display for Gcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GCS(gs://{} at {})", self.bucket, self.base)
    }
}

/// A failed request, in words: method, URL (never a credential), and what came back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RequestError(String);

fn generic(message: String) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(RequestError(message)),
    }
}

/// One object as the JSON API lists it.
#[derive(serde::Deserialize)]
struct Item {
    name: String,
    /// The JSON API sends sizes as strings.
    size: String,
    updated: Option<DateTime<Utc>>,
    etag: Option<String>,
    generation: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    prefixes: Vec<String>,
    next_page_token: Option<String>,
}

impl Item {
    fn into_meta(self) -> object_store::Result<ObjectMeta> {
        let size = self.size.parse().map_err(|_| {
            generic(format!(
                "object {} has a size that is not a number: {}",
                self.name, self.size
            ))
        })?;
        // As named: Path::from would percent-encode `%`, `#` and every non-ASCII letter.
        let location = Path::parse(&self.name).map_err(|e| generic(e.to_string()))?;
        Ok(ObjectMeta {
            location,
            last_modified: self.updated.unwrap_or_default(),
            size,
            e_tag: self.etag,
            version: self.generation,
        })
    }
}

impl Gcs {
    pub fn new(
        base: Url,
        bucket: String,
        credentials: Option<GcpCredentialProvider>,
        timeout: Duration,
        connect_timeout: Duration,
        retries: usize,
    ) -> object_store::Result<Gcs> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|e| generic(format!("cannot make an HTTP client: {e}")))?;
        Ok(Gcs {
            http,
            base,
            bucket,
            credentials,
            retries,
        })
    }

    /// `{base}/{segments…}`, each segment escaped as Google's clients do: all but letters,
    /// digits and `-._~` (an object name's `/` included). The URL standard's path escaping
    /// leaves `;`, `=`, `@`, … as they are, and a server may take `;…` for path parameters:
    /// the object `part;0.parquet` was asked for as `part`.
    fn url(&self, segments: &[&str]) -> Url {
        const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let mut url = self.base.clone();
        let mut path = url.path().trim_end_matches('/').to_string();
        for segment in segments {
            path.push('/');
            path.extend(utf8_percent_encode(segment, SEGMENT));
        }
        url.set_path(&path);
        url
    }

    fn object_url(&self, location: &Path) -> Url {
        self.url(&["storage", "v1", "b", &self.bucket, "o", location.as_ref()])
    }

    /// Sends the request `build` makes, with the bearer token, retrying 429, 5xx, timeouts and
    /// failed connections with exponential backoff. Any other failure status is mapped to the
    /// object_store error a caller can act on (not found, permission denied, …).
    async fn send(
        &self,
        location: &Path,
        build: impl Fn() -> RequestBuilder,
    ) -> object_store::Result<Response> {
        let mut attempt = 0;
        loop {
            let mut request = build();
            if let Some(credentials) = &self.credentials {
                let token = credentials.get_credential().await.map_err(|e| {
                    object_store::Error::Unauthenticated {
                        path: location.to_string(),
                        source: Box::new(RequestError(format!("no access token: {e}"))),
                    }
                })?;
                if !token.bearer.is_empty() {
                    request = request.bearer_auth(&token.bearer);
                }
            }
            let request = request
                .build()
                .map_err(|e| generic(format!("cannot make a request: {e}")))?;
            let what = format!("{} {}", request.method(), request.url());
            let outcome = self.http.execute(request).await;
            let retry = match &outcome {
                Ok(response) => {
                    let status = response.status();
                    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
                }
                Err(e) => e.is_timeout() || e.is_connect() || e.is_request() || e.is_body(),
            };
            if retry && attempt < self.retries {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            let tries = attempt + 1;
            return match outcome {
                Ok(response) if response.status().is_success() => Ok(response),
                Ok(response) => Err(status_error(location, &what, tries, response).await),
                Err(e) => Err(generic(format!(
                    "{what} failed after {tries} attempt(s): {}",
                    chain(&e)
                ))),
            };
        }
    }

    /// The object's version when it holds `body`.
    async fn holds(&self, location: &Path, body: &Bytes) -> Option<PutResult> {
        let got = self.get_opts(location, GetOptions::default()).await.ok()?;
        let (e_tag, version) = (got.meta.e_tag.clone(), got.meta.version.clone());
        (got.bytes().await.ok()? == *body).then_some(PutResult { e_tag, version })
    }

    /// [`Gcs::send`], with the body read whole: a body cut off midway is asked for again, within
    /// as many retries (it failed at the first cut, though the error said requests are retried).
    async fn send_whole(
        &self,
        location: &Path,
        build: impl Fn() -> RequestBuilder,
    ) -> object_store::Result<(HeaderMap, Bytes)> {
        let mut cut = 0;
        loop {
            let response = self.send(location, &build).await?;
            let headers = response.headers().clone();
            match response.bytes().await {
                Ok(body) => return Ok((headers, body)),
                Err(_) if cut < self.retries => {
                    tokio::time::sleep(backoff(cut)).await;
                    cut += 1;
                }
                Err(e) => {
                    return Err(generic(format!(
                        "reading {location} was cut off, {} time(s): {}",
                        cut + 1,
                        chain(&e)
                    )));
                }
            }
        }
    }

    /// One page of a listing.
    async fn page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
    ) -> object_store::Result<Page> {
        let mut url = self.url(&["storage", "v1", "b", &self.bucket, "o"]);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("prefix", prefix);
            if delimiter {
                query.append_pair("delimiter", "/");
            }
            if let Some(token) = token {
                query.append_pair("pageToken", token);
            }
        }
        let (_, body) = self
            .send_whole(&Path::from(prefix), || self.http.get(url.clone()))
            .await?;
        serde_json::from_slice(&body).map_err(|e| {
            generic(format!(
                "listing {prefix}: the server's answer is not a listing: {e}"
            ))
        })
    }

    /// Every page of a listing, in order.
    fn pages(
        &self,
        prefix: Option<&Path>,
        delimiter: bool,
    ) -> BoxStream<'_, object_store::Result<Page>> {
        let prefix = match prefix {
            Some(p) if !p.as_ref().is_empty() => format!("{p}/"),
            _ => String::new(),
        };
        stream::try_unfold(Some(None::<String>), move |state| {
            let prefix = prefix.clone();
            async move {
                let Some(token) = state else {
                    return Ok(None);
                };
                let page = self.page(&prefix, delimiter, token.as_deref()).await?;
                let next = page.next_page_token.clone().map(Some);
                Ok(Some((page, next)))
            }
        })
        .boxed()
    }
}

fn backoff(attempt: usize) -> Duration {
    Duration::from_millis(100 << attempt.min(6))
}

async fn status_error(
    location: &Path,
    what: &str,
    tries: usize,
    response: Response,
) -> object_store::Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(300).collect();
    let source = Box::new(RequestError(format!(
        "{what} returned {status} after {tries} attempt(s): {body}"
    )));
    let path = location.to_string();
    match status {
        StatusCode::NOT_FOUND => object_store::Error::NotFound { path, source },
        StatusCode::UNAUTHORIZED => object_store::Error::Unauthenticated { path, source },
        StatusCode::FORBIDDEN => object_store::Error::PermissionDenied { path, source },
        StatusCode::PRECONDITION_FAILED => object_store::Error::Precondition { path, source },
        _ => object_store::Error::Generic {
            store: STORE,
            source,
        },
    }
}

fn not_supported(operation: &str) -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: operation.to_string(),
        implementer: STORE.to_string(),
    }
}

/// `bytes a-b/total` → (a..b+1, total).
fn content_range(headers: &HeaderMap) -> Option<(Range<u64>, u64)> {
    let value = headers.get("content-range")?.to_str().ok()?;
    let (range, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    Some((start..end + 1, total.parse().ok()?))
}

#[async_trait]
impl ObjectStore for Gcs {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let body = Bytes::from(payload);
        let mut url = self.url(&["upload", "storage", "v1", "b", &self.bucket, "o"]);
        url.query_pairs_mut()
            .append_pair("uploadType", "media")
            .append_pair("name", location.as_ref());
        // A conditional put names the generation it expects (0: none yet).
        let expected = match &opts.mode {
            PutMode::Overwrite => None,
            PutMode::Create => Some("0".to_string()),
            PutMode::Update(version) => Some(version.version.clone().ok_or_else(|| {
                generic(format!(
                    "{location}: a conditional put needs the object's generation"
                ))
            })?),
        };
        if let Some(generation) = &expected {
            url.query_pairs_mut()
                .append_pair("ifGenerationMatch", generation);
        }
        let sent = self
            .send(location, || {
                self.http
                    .request(Method::POST, url.clone())
                    .header("content-type", "application/octet-stream")
                    .body(body.clone())
            })
            .await;
        let response = match sent {
            // A put retried after its answer was lost meets its own write: the object holds what
            // was sent (it was said to be another writer's, the export's or state's "replaced").
            Err(object_store::Error::Precondition { path, source }) => {
                if let Some(done) = self.holds(location, &body).await {
                    return Ok(done);
                }
                return Err(match opts.mode {
                    PutMode::Create => object_store::Error::AlreadyExists { path, source },
                    _ => object_store::Error::Precondition { path, source },
                });
            }
            sent => sent?,
        };
        let body = response.bytes().await.unwrap_or_default();
        let item: Option<Item> = serde_json::from_slice(&body).ok();
        Ok(PutResult {
            e_tag: item.as_ref().and_then(|i| i.etag.clone()),
            version: item.and_then(|i| i.generation),
        })
    }

    async fn put_multipart_opts(
        &self,
        _location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(not_supported("put_multipart"))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if options.head {
            let response = self
                .send(location, || self.http.get(self.object_url(location)))
                .await?;
            let body = response.bytes().await.unwrap_or_default();
            let item: Item = serde_json::from_slice(&body).map_err(|e| {
                generic(format!(
                    "{location}: the server's answer is not object metadata: {e}"
                ))
            })?;
            let meta = item.into_meta()?;
            return Ok(GetResult {
                range: 0..meta.size,
                meta,
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                attributes: Attributes::default(),
            });
        }
        let range = match &options.range {
            None => None,
            Some(GetRange::Bounded(r)) if r.is_empty() => {
                return Err(generic(format!("{location}: an empty range was asked for")));
            }
            Some(GetRange::Bounded(r)) => Some(format!("bytes={}-{}", r.start, r.end - 1)),
            Some(GetRange::Offset(o)) => Some(format!("bytes={o}-")),
            Some(GetRange::Suffix(n)) => Some(format!("bytes=-{n}")),
        };
        let mut url = self.object_url(location);
        url.query_pairs_mut().append_pair("alt", "media");
        // Read whole (the reader collects each range anyway), so that a body cut off is retried.
        let (headers, body) = self
            .send_whole(location, || {
                let request = self.http.get(url.clone());
                match &range {
                    Some(range) => request.header("range", range),
                    None => request,
                }
            })
            .await?;
        let length = body.len() as u64;
        let (range, size) = content_range(&headers).unwrap_or((0..length, length));
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let meta = ObjectMeta {
            location: location.clone(),
            last_modified: header("last-modified")
                .and_then(|v| DateTime::parse_from_rfc2822(&v).ok())
                .map(|d| d.with_timezone(&Utc))
                .unwrap_or_default(),
            size,
            e_tag: header("etag"),
            version: header("x-goog-generation"),
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(stream::once(async { Ok(body) }).boxed()),
            meta,
            range,
            attributes: Attributes::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        locations.map(|_| Err(not_supported("delete"))).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // The stream outlives `self`'s borrow, so it lists with a copy of the client.
        let gcs = self.clone();
        let prefix = prefix.cloned();
        stream::once(async move {
            let pages: Vec<Page> = gcs.pages(prefix.as_ref(), false).try_collect().await?;
            let items: Vec<object_store::Result<ObjectMeta>> = pages
                .into_iter()
                .flat_map(|p| p.items)
                // `folder/` placeholders that consoles make are not files.
                .filter(|i| !i.name.ends_with('/'))
                .map(Item::into_meta)
                .collect();
            Ok::<_, object_store::Error>(stream::iter(items))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let pages: Vec<Page> = self.pages(prefix, true).try_collect().await?;
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
        };
        for page in pages {
            for prefix in &page.prefixes {
                let prefix = Path::parse(prefix).map_err(|e| generic(e.to_string()))?;
                result.common_prefixes.push(prefix);
            }
            for item in page.items.into_iter().filter(|i| !i.name.ends_with('/')) {
                result.objects.push(item.into_meta()?);
            }
        }
        Ok(result)
    }

    async fn copy_opts(
        &self,
        _from: &Path,
        _to: &Path,
        _options: CopyOptions,
    ) -> object_store::Result<()> {
        Err(not_supported("copy"))
    }
}
