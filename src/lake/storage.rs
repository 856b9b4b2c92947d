//! Object stores, chosen by URL scheme in one place: a folder or `file://`, `gs://bucket/prefix`
//! and `s3://bucket/prefix`.

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::aws::AmazonS3Builder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{ClientOptions, ObjectStore, RetryConfig, local::LocalFileSystem, path::Path};
use url::Url;

use super::gcs::Gcs;
use crate::{Error, Result};

const GCS_ENDPOINT: &str = "https://storage.googleapis.com";

/// How to reach a bucket: endpoint, credentials and patience.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageOptions {
    /// Another endpoint than the cloud's own (an emulator, MinIO, a private endpoint).
    pub endpoint: Option<String>,
    /// No credentials: public buckets.
    pub anonymous: bool,
    /// Longest wait for one request before it is abandoned (and retried).
    pub timeout: Duration,
    /// Retries of a request that failed with 429, 5xx, a timeout or no connection.
    pub retries: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            endpoint: None,
            anonymous: false,
            timeout: Duration::from_secs(30),
            retries: 3,
        }
    }
}

/// Where a lake lives: the store, the URL DataFusion knows the store by, and the lake's root in it.
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    pub store_url: ObjectStoreUrl,
    pub root: Path,
    /// What goes before an object's path to name it for a person (`/` for a local folder).
    pub display_prefix: String,
    /// Which credentials requests carry, and how to change them, for permission errors.
    pub credentials: String,
}

/// True for a `gs://` or `s3://` URL (or `gcs://`, `s3a://`, `s3n://`, as Hadoop, Spark and
/// fsspec spell them).
pub fn is_bucket(lake: &str) -> bool {
    lake.split_once("://")
        .is_some_and(|(scheme, _)| bucket_scheme(scheme).is_some())
}

/// A bucket URL as dau names it (`gcs://b/x/` is `gs://b/x`), or None for a place in no bucket.
pub fn bucket_url(place: &str) -> Option<String> {
    let (scheme, rest) = place.split_once("://")?;
    Some(format!(
        "{}://{}",
        bucket_scheme(scheme)?,
        rest.trim_end_matches('/')
    ))
}

/// `gs` or `s3` for a scheme that names a bucket in them.
fn bucket_scheme(scheme: &str) -> Option<&'static str> {
    match scheme {
        "gs" | "gcs" => Some("gs"),
        "s3" | "s3a" | "s3n" => Some("s3"),
        _ => None,
    }
}

/// The folder or file that a local place (a lake, rollups, gen's output) names: itself, or a
/// `file://` URL's path, read as a URL (`file:///data/my%20lake` is `/data/my lake`) when it is
/// one (`file://lake` is `lake`). `file:/data/lake`, as Hadoop and Spark print a path, is
/// `file:///data/lake` (it was a folder `file:` in the working one).
pub fn local_path(place: &str) -> std::path::PathBuf {
    let rest = (place.strip_prefix("file://")).or_else(|| {
        place
            .strip_prefix("file:")
            .filter(|rest| rest.starts_with('/'))
    });
    match rest {
        None => place.into(),
        Some(rest) => Url::parse(place)
            .ok()
            .and_then(|url| url.to_file_path().ok())
            .unwrap_or_else(|| rest.into()),
    }
}

/// Opens a lake given as a plain folder, a `file://` URL, `gs://bucket/prefix` or `s3://bucket/prefix`.
pub fn open(lake: &str, options: &StorageOptions) -> Result<Location> {
    match lake.split_once("://") {
        None | Some(("file", _)) => local(lake, local_path(lake)),
        Some((scheme, rest)) if let Some(scheme) = bucket_scheme(scheme) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::usage(
                    format!("no bucket in the lake URL '{lake}'"),
                    format!("write it as {scheme}://BUCKET/PREFIX"),
                ));
            }
            let (store, credentials) = if scheme == "gs" {
                gcs(bucket, options)
            } else {
                s3(bucket, options)
            }
            .map_err(|(e, credentials)| storage_error(lake, &e, &credentials))?;
            let store_url = ObjectStoreUrl::parse(format!("{scheme}://{bucket}"))?;
            // Taken as written: an object's name is any text (`events#2`, `événements`).
            let root = Path::parse(prefix).map_err(|e| {
                Error::usage(
                    format!("the URL '{lake}' has a prefix no object can be under: {e}"),
                    format!(
                        "write it as {scheme}://BUCKET/PREFIX, with no empty, '.' or '..' part"
                    ),
                )
            })?;
            Ok(Location {
                store,
                store_url,
                root,
                display_prefix: format!("{scheme}://{bucket}/"),
                credentials,
            })
        }
        Some((scheme, _)) => Err(Error::usage(
            format!("unsupported lake URL scheme '{scheme}://' ({lake})"),
            "use a folder, file://, gs://BUCKET/PREFIX or s3://BUCKET/PREFIX (also spelled \
             gcs://, s3a:// and s3n://)",
        )),
    }
}

/// A failed storage request as the user reads it: what failed, and what to do about it.
pub fn storage_error(lake: &str, error: &object_store::Error, credentials: &str) -> Error {
    Error::Storage {
        what: "read the lake",
        lake: lake.to_string(),
        detail: error.to_string(),
        hint: hint(error, credentials),
    }
}

/// The hint for an object named with an empty, `.` or `..` part (`a//b`, as writers that join
/// prefixes badly make them), or a control character.
const INVALID_NAME: &str = "; an object's name has an empty, '.' or '..' part (such as \
    date=2024-06-01//part-0.parquet) or a control character (a tab, a newline), which dau cannot \
    read past: rename or remove it";

/// The hint for a bucket that does not exist.
const NO_BUCKET: &str = "; the bucket does not exist: check its name in the URL";

/// What to do about a failed write into a bucket (`; …`): as [`hint`], but an object not found
/// is its bucket (a put creates any object).
pub fn write_hint(error: &object_store::Error, credentials: &str) -> String {
    match error {
        object_store::Error::NotFound { .. } => NO_BUCKET.to_string(),
        _ => hint(error, credentials),
    }
}

/// The end of a credentials hint: pass --anonymous for a public bucket, unless it was passed.
fn or_anonymous(anonymous: bool) -> &'static str {
    match anonymous {
        true => " (without --anonymous)",
        false => ", or pass --anonymous for a public bucket",
    }
}

/// What to do about a failed storage request (`; …`), or nothing: `credentials` for a refusal.
pub fn hint(error: &object_store::Error, credentials: &str) -> String {
    use object_store::Error as E;
    match error {
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => format!("; {credentials}"),
        // S3 reports refused or missing credentials as generic errors.
        E::Generic { source, .. } if is_about_credentials(&source.to_string()) => {
            format!("; {credentials}")
        }
        // S3 answers a request to another region than the bucket's so.
        E::Generic { source, .. } if source.to_string().contains("configured region") => {
            "; set AWS_REGION to the bucket's region (or region in the profile of ~/.aws/config)"
                .to_string()
        }
        // A name object_store cannot hold (GCS, S3 listings): the whole listing fails.
        E::InvalidPath { .. } => INVALID_NAME.to_string(),
        E::Generic { source, .. }
            if [
                "empty path segment",
                "invalid path",
                "illegal character sequence",
            ]
            .iter()
            .any(|w| source.to_string().contains(w)) =>
        {
            INVALID_NAME.to_string()
        }
        // A folder's error (a loop of links) says what it is; there is no endpoint.
        E::Generic {
            store: "LocalFileSystem",
            ..
        } => String::new(),
        E::Generic { .. } => "; check that the endpoint is reachable (--endpoint); each request \
                              waits up to --timeout seconds and is retried --retries times"
            .to_string(),
        // S3's NoSuchBucket, GCS's "The specified bucket does not exist".
        E::NotFound { source, .. } if source.to_string().contains("bucket does not exist") => {
            NO_BUCKET.to_string()
        }
        E::NotFound { .. } | E::Precondition { .. } => {
            "; was the lake changed while dau read it?".to_string()
        }
        _ => String::new(),
    }
}

fn is_about_credentials(message: &str) -> bool {
    [
        "AccessKeyId",
        "AccessDenied",
        "SignatureDoesNotMatch",
        "credential",
        "403 Forbidden",
        "401 Unauthorized",
    ]
    .iter()
    .any(|word| message.contains(word))
}

/// A store and the words naming its credentials, or why it cannot be made (with those words).
type Made = std::result::Result<(Arc<dyn ObjectStore>, String), (object_store::Error, String)>;

fn local(lake: &str, folder: std::path::PathBuf) -> Result<Location> {
    let not_found = || Error::LakeNotFound {
        lake: lake.to_string(),
    };
    let folder = std::fs::canonicalize(&folder).map_err(|_| not_found())?;
    if !folder.is_dir() {
        return Err(Error::usage(
            format!("the lake {lake} is a file"),
            "give the lake's folder, which holds a folder per day (date=YYYY-MM-DD/…)",
        ));
    }
    let root = Path::from_absolute_path(&folder).map_err(|e| storage_error(lake, &e.into(), ""))?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new()),
        store_url: ObjectStoreUrl::local_filesystem(),
        root,
        display_prefix: "/".to_string(),
        credentials: "local files".to_string(),
    })
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A GCS bucket, with credentials found as Google's own tools find them: a service account
/// (`GOOGLE_APPLICATION_CREDENTIALS` or `GOOGLE_SERVICE_ACCOUNT`), the gcloud application-default
/// credentials file, else the metadata server. `STORAGE_EMULATOR_HOST`, as in Google's client
/// libraries, points at an emulator and sends no credentials.
fn gcs(bucket: &str, options: &StorageOptions) -> Made {
    let emulator = env("STORAGE_EMULATOR_HOST").map(|host| {
        if host.contains("://") {
            host
        } else {
            format!("http://{host}")
        }
    });
    let endpoint = options.endpoint.clone().or(emulator.clone());
    let base = endpoint.clone().unwrap_or_else(|| GCS_ENDPOINT.to_string());
    let base = endpoint_url(&base).map_err(|what| unmade("GCS", what))?;
    let anonymous = options.anonymous || (emulator.is_some() && options.endpoint.is_none());
    let described = if anonymous {
        let why = if options.anonymous {
            "--anonymous, DAU_ANONYMOUS or [lake] anonymous"
        } else {
            "STORAGE_EMULATOR_HOST is set"
        };
        format!("none (anonymous: {why})")
    } else {
        gcs_credential_source()
    };
    let hint = format!(
        "credentials used: {described}. To use others, set GOOGLE_APPLICATION_CREDENTIALS to a \
         service-account key file or run `gcloud auth application-default login`{}",
        or_anonymous(anonymous)
    );
    let fail = |e| (e, hint.clone());
    let credentials = match anonymous {
        true => None,
        false => Some(
            GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(options))
                .with_retry(retry_config(options))
                .build()
                .map_err(|e| {
                    fail(object_store::Error::Unauthenticated {
                        path: String::new(),
                        source: Box::new(e),
                    })
                })?
                .credentials()
                .clone(),
        ),
    };
    let store = Gcs::new(
        base,
        bucket.to_string(),
        credentials,
        options.timeout,
        connect_timeout(options),
        options.retries,
    )
    .map_err(fail)?;
    Ok((Arc::new(store), hint))
}

/// Which GCS credential source object_store's builder will take, in its order.
fn gcs_credential_source() -> String {
    for var in [
        "GOOGLE_SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_PATH",
        "SERVICE_ACCOUNT",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ] {
        if let Some(value) = env(var) {
            return if var.ends_with("_KEY") {
                format!("the service-account key in {var}")
            } else {
                format!("the key file in {var} ({value})")
            };
        }
    }
    let adc = dirs::home_dir()
        .map(|home| home.join(".config/gcloud/application_default_credentials.json"))
        .filter(|path| path.is_file());
    match adc {
        Some(path) => format!(
            "gcloud application-default credentials ({})",
            path.display()
        ),
        None => "the GCE metadata server (no GOOGLE_APPLICATION_CREDENTIALS and no gcloud \
                 application-default login on this machine)"
            .to_string(),
    }
}

/// An S3 bucket, with the standard AWS variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL`), else a profile in `~/.aws/credentials`
/// (`AWS_PROFILE`, default `default`), else the instance metadata service.
fn s3(bucket: &str, options: &StorageOptions) -> Made {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_client_options(client_options(options))
        .with_retry(retry_config(options));
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
        builder =
            builder.with_region(profile_value("config", "region").unwrap_or("us-east-1".into()));
    }
    let endpoint = options.endpoint.clone().or(env("AWS_ENDPOINT_URL"));
    if let Some(endpoint) = endpoint {
        endpoint_url(&endpoint).map_err(|what| unmade("S3", what))?;
        // Emulators and MinIO serve buckets as paths, not as host names.
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
    }
    let described = if options.anonymous {
        builder = builder.with_skip_signature(true);
        "none (anonymous: --anonymous, DAU_ANONYMOUS or [lake] anonymous)".to_string()
    } else if env("AWS_ACCESS_KEY_ID").is_some() {
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment".to_string()
    } else if let (Some(key), Some(secret)) = (
        profile_value("credentials", "aws_access_key_id"),
        profile_value("credentials", "aws_secret_access_key"),
    ) {
        builder = builder
            .with_access_key_id(key)
            .with_secret_access_key(secret);
        if let Some(token) = profile_value("credentials", "aws_session_token") {
            builder = builder.with_token(token);
        }
        format!("profile '{}' in ~/.aws/credentials", aws_profile())
    } else {
        "the instance metadata service (no AWS_ACCESS_KEY_ID and no ~/.aws/credentials profile)"
            .to_string()
    };
    let hint = format!(
        "credentials used: {described}. To use others, set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or AWS_PROFILE{}",
        or_anonymous(options.anonymous)
    );
    let store = builder.build().map_err(|e| (e, hint.clone()))?;
    Ok((Arc::new(store), hint))
}

/// An endpoint as the stores take it: an http(s) URL with a host. `localhost:9000` (no scheme)
/// reads as a URL of the scheme `localhost`, and the S3 store panicked on it.
pub fn endpoint_url(text: &str) -> std::result::Result<Url, String> {
    // (A URL parser drops spaces at the ends, and the S3 store panicked on them.)
    if text.contains(char::is_whitespace) {
        return Err(format!(
            "the endpoint '{text}' is not a URL: it holds a space or a tab"
        ));
    }
    let url = Url::parse(text).map_err(|e| format!("the endpoint '{text}' is not a URL: {e}"))?;
    // (The stores take no credentials from it, and every storage error would show them.)
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "the endpoint {}://***@{} holds a user or password: the stores' credentials are the \
             AWS_* or GOOGLE_* variables'",
            url.scheme(),
            url.host_str().unwrap_or_default()
        ));
    }
    match (url.scheme(), url.host()) {
        ("http" | "https", Some(_)) => Ok(url),
        _ => Err(format!(
            "the endpoint '{text}' is not an http:// or https:// URL with a host"
        )),
    }
}

/// The error of a store that cannot be made: `what` is wrong with its settings.
fn unmade(store: &'static str, what: String) -> (object_store::Error, String) {
    let source = what.into();
    (
        object_store::Error::Generic { store, source },
        String::new(),
    )
}

/// Timeouts for object_store's own clients (S3, and GCS credential requests).
fn client_options(options: &StorageOptions) -> ClientOptions {
    ClientOptions::new()
        .with_timeout(options.timeout)
        .with_connect_timeout(connect_timeout(options))
        .with_allow_http(true)
}

fn retry_config(options: &StorageOptions) -> RetryConfig {
    RetryConfig {
        max_retries: options.retries,
        retry_timeout: options.timeout * (options.retries as u32 + 1),
        ..RetryConfig::default()
    }
}

/// A connection that takes longer than this is not coming.
fn connect_timeout(options: &StorageOptions) -> Duration {
    options.timeout.min(Duration::from_secs(10))
}

fn aws_profile() -> String {
    env("AWS_PROFILE").unwrap_or_else(|| "default".to_string())
}

/// A key of the current profile in `~/.aws/credentials` or `~/.aws/config` (INI; in `config`,
/// profiles other than `default` are headed `[profile NAME]`).
fn profile_value(file: &str, key: &str) -> Option<String> {
    let path = dirs::home_dir()?.join(".aws").join(file);
    let text = std::fs::read_to_string(path).ok()?;
    let profile = aws_profile();
    let headers = [format!("[{profile}]"), format!("[profile {profile}]")];
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = headers.iter().any(|h| h == line);
        } else if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An object named `a//b` fails the whole listing (GCS and S3 say it their ways): the hint
    /// says which name to fix, not that the endpoint may be unreachable; a folder's error gets no
    /// endpoint hint either.
    #[test]
    fn a_name_no_object_can_have_is_named_as_such() {
        let generic = |store: &'static str, text: &str| object_store::Error::Generic {
            store,
            source: text.to_string().into(),
        };
        for error in [
            generic(
                "GCS",
                "Path \"ev/date=2024-02-01//q.parquet\" contained empty path segment",
            ),
            generic(
                "S3",
                "Encountered object with invalid path: ev/date=2024-02-01/../r.parquet",
            ),
            generic(
                "GCS",
                "Encountered illegal character sequence \".\" whilst parsing path segment \".\"",
            ),
        ] {
            assert_eq!(hint(&error, ""), INVALID_NAME, "{error}");
        }
        let looped = generic("LocalFileSystem", "Too many levels of symbolic links");
        assert_eq!(hint(&looped, ""), "");
    }

    #[test]
    fn a_bucket_in_another_region_says_to_set_it() {
        let redirected = object_store::Error::Generic {
            store: "S3",
            source: "Received redirect without LOCATION, this normally indicates an incorrectly \
                     configured region"
                .into(),
        };
        let said = hint(&redirected, "");
        assert!(
            said.starts_with("; set AWS_REGION to the bucket's region"),
            "{said}"
        );
    }

    #[test]
    fn urls_pick_their_store() {
        let options = StorageOptions {
            anonymous: true,
            endpoint: Some("http://127.0.0.1:1".into()),
            ..StorageOptions::default()
        };
        let gs = open("gs://bucket/some/prefix/", &options).unwrap();
        assert_eq!(gs.root, Path::from("some/prefix"));
        assert_eq!(gs.display_prefix, "gs://bucket/");
        assert_eq!(gs.store_url.as_str(), "gs://bucket/");
        let odd = open("gs://bucket/é #1 50%/x", &options).unwrap();
        assert_eq!(odd.root.as_ref(), "é #1 50%/x");
        let s3 = open("s3://bucket", &options).unwrap();
        assert_eq!(s3.root, Path::from(""));
        assert_eq!(s3.store_url.as_str(), "s3://bucket/");
        // As Hadoop, Spark and fsspec spell the same buckets.
        for (alias, same) in [("s3a", "s3"), ("s3n", "s3"), ("gcs", "gs")] {
            let aliased = open(&format!("{alias}://bucket/x"), &options).unwrap();
            assert_eq!(aliased.store_url.as_str(), format!("{same}://bucket/"));
            assert_eq!(aliased.display_prefix, format!("{same}://bucket/"));
            assert!(is_bucket(&format!("{alias}://bucket/x")));
        }
        assert!(!is_bucket("hdfs://nn/x") && !is_bucket("s3"));
        for bad in [
            "gs:///x",
            "ftp://host/x",
            "s3://bucket/a//b",
            "gs://bucket/a/../b",
        ] {
            let err = open(bad, &options).err().unwrap();
            assert!(matches!(err, Error::Usage { .. }), "{bad}: {err}");
        }
    }
}
