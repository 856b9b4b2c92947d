//! A table in a PostgreSQL database: the exported days' rows deleted and inserted again in one
//! transaction, so a failed or killed export leaves the table as it was.
//!
//! The table, when absent, is made from the export's columns: `date` DATE, counts BIGINT, means
//! and ratios DOUBLE PRECISION, ids BIGINT or TEXT; the primary key is `date` (with the user id
//! for user-days). The connection is TCP, encrypted with TLS as the URL's `sslmode` says (libpq's
//! meanings), or a Unix socket.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Float64Type, Int32Type, Int64Type, SchemaRef,
};
use datafusion::prelude::SessionContext;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Config;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{create_table, dates_of, pgpass, quote_table, take_parameter, without_password};
use crate::error::chain;
use crate::{Error, Result};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The URL's `sslmode` and `sslrootcert`, which dau reads itself (tokio-postgres knows neither
/// verify-ca, verify-full nor a root certificate file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    mode: Mode,
    /// The CA certificates (a PEM file) that sign the server's; none: the machine's own.
    root: Option<PathBuf>,
}

/// libpq's `sslmode`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Mode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it.
    #[default]
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS, with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, with a certificate signed by a trusted CA for the host in the URL.
    VerifyFull,
}

impl Tls {
    /// Takes `sslmode` and `sslrootcert` out of `url` (`shown` is the URL for messages).
    pub fn take(shown: &str, url: &str) -> Result<(String, Tls)> {
        let (url, mode) = take_parameter(url, "sslmode");
        let (url, root) = take_parameter(&url, "sslrootcert");
        // What the URL leaves out, from libpq's environment.
        let (shown, mode) = match mode {
            Some(mode) => (format!("'{shown}'"), Some(mode)),
            None => ("PGSSLMODE".to_string(), var("PGSSLMODE")),
        };
        let root = root.or_else(|| var("PGSSLROOTCERT"));
        let mode = match mode.as_deref() {
            None => None,
            Some("disable") => Some(Mode::Disable),
            Some("prefer") => Some(Mode::Prefer),
            Some("require") => Some(Mode::Require),
            Some("verify-ca") => Some(Mode::VerifyCa),
            Some("verify-full") => Some(Mode::VerifyFull),
            Some(other) => {
                return Err(Error::usage(
                    format!("bad sslmode '{other}' in {shown}"),
                    "sslmode is disable, prefer (the default), require, verify-ca or verify-full",
                ));
            }
        };
        // `system`, as in libpq: the machine's CA certificates, and then verify-full.
        let (mode, root) = match (mode, root) {
            (None | Some(Mode::VerifyFull), Some(root)) if root == "system" => {
                (Mode::VerifyFull, None)
            }
            (Some(_), Some(root)) if root == "system" => {
                return Err(Error::usage(
                    format!("sslrootcert=system with a weaker sslmode in {shown}"),
                    "sslrootcert=system goes with sslmode=verify-full, or with no sslmode",
                ));
            }
            (mode, root) => (mode.unwrap_or_default(), root.map(PathBuf::from)),
        };
        Ok((url, Tls { mode, root }))
    }

    /// A connector that checks the server's certificate as libpq would: its chain with
    /// verify-ca, verify-full or a `sslrootcert`; its host name with verify-full; not at all
    /// with prefer and require alone (encrypted, but the server not authenticated).
    fn connector(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verify_chain = matches!(self.mode, Mode::VerifyCa | Mode::VerifyFull)
            || (self.root.is_some() && self.mode != Mode::Disable);
        let chain = if verify_chain {
            let roots = Arc::new(self.roots()?);
            let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    Error::usage(
                        format!("cannot check the PostgreSQL server's certificate: {e}"),
                        "give the CA certificates that sign it as ?sslrootcert=FILE (PEM)",
                    )
                })?;
            Some(verifier)
        } else {
            None
        };
        let verifier = Verifier {
            chain,
            host: self.mode == Mode::VerifyFull,
            provider: provider.clone(),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// The CA certificates that may sign the server's.
    fn roots(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        match &self.root {
            Some(path) => {
                let bad = |detail: String| {
                    Error::usage(
                        format!("cannot use sslrootcert {}: {detail}", path.display()),
                        "give a PEM file of the CA certificates that sign the server's, or \
                         sslrootcert=system for this machine's",
                    )
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| bad(e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(bad("it holds no certificate".into()));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        Ok(roots)
    }

    fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

/// Checks a server's certificate: its chain when `chain` is set, and then its host name when
/// `host` is; the handshake's signatures always.
#[derive(Debug)]
struct Verifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    host: bool,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.host => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signed: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, signed, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signed: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, signed, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A libpq environment variable; unset when empty.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The connection settings of `url`, and what it leaves out from libpq's environment variables
/// (PGHOST, PGPORT, PGUSER, PGDATABASE, PGCONNECT_TIMEOUT); the error says what is wrong.
fn settings(url: &str) -> std::result::Result<Config, String> {
    let mut config: Config = url.parse().map_err(|e| chain(&e))?;
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        for host in var("PGHOST").iter().flat_map(|h| h.split(',')) {
            config.host(host);
        }
    }
    if config.get_ports().is_empty() {
        for port in var("PGPORT").iter().flat_map(|p| p.split(',')) {
            let port = port
                .parse()
                .map_err(|_| format!("PGPORT '{port}' is not a port"))?;
            config.port(port);
        }
    }
    if config.get_user().is_none()
        && let Some(user) = var("PGUSER")
    {
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Some(database) = var("PGDATABASE")
    {
        config.dbname(database);
    }
    // (0, which libpq takes for no limit, is the default limit, as tokio-postgres takes the
    // URL's `connect_timeout=0`: a nightly export is better failed than hung.)
    if config.get_connect_timeout().is_none() {
        let seconds = match var("PGCONNECT_TIMEOUT") {
            Some(s) => s
                .parse()
                .map_err(|_| format!("PGCONNECT_TIMEOUT '{s}' is not a number of seconds"))?,
            None => 0,
        };
        config.connect_timeout(match seconds {
            0 => CONNECT_TIMEOUT,
            seconds => Duration::from_secs(seconds),
        });
    }
    if config.get_application_name().is_none() {
        config.application_name("dau");
    }
    Ok(config)
}

/// Gives `config` the password its URL lacks, as libpq finds one: PGPASSWORD's, else the line
/// for this connection in the password file (PGPASSFILE, else `~/.pgpass`). Says where the
/// password is from, or why there is none, for the error when the server refuses.
fn find_password(config: &mut Config) -> String {
    if config.get_password().is_some() {
        return "the password given was the URL's".into();
    }
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
        return "the password given was PGPASSWORD's".into();
    }
    let file = var("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| dirs::home_dir().map(|home| home.join(".pgpass")));
    let Some(file) = file else {
        return "no password was given".into();
    };
    // The file names a Unix socket in libpq's default folder `localhost`, as libpq does.
    let host = match (config.get_hosts().first(), config.get_hostaddrs().first()) {
        (Some(Host::Tcp(name)), _) => name.clone(),
        (Some(Host::Unix(path)), _) if path == Path::new(SOCKET_FOLDER) => "localhost".into(),
        (Some(Host::Unix(path)), _) => path.display().to_string(),
        (None, Some(address)) => address.to_string(),
        (None, None) => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = match config.get_user() {
        Some(user) => user.to_string(),
        None => whoami::username().unwrap_or_default(),
    };
    let database = config.get_dbname().unwrap_or(&user).to_string();
    match pgpass::lookup(&file, [&host, &port, &database, &user]) {
        Ok(Some((password, line))) => {
            config.password(password);
            format!(
                "the password given was from {}, line {line}",
                file.display()
            )
        }
        Ok(None) => format!(
            "no password was given: none is in the URL or PGPASSWORD, and {} (or the file \
             PGPASSFILE names) has no line for {host}:{port}:{database}:{user}",
            file.display()
        ),
        Err(why) => format!("no password was given: the password file {why}, so it was not read"),
    }
}

/// Where libpq (as Debian builds it) looks for a server's Unix socket.
const SOCKET_FOLDER: &str = "/var/run/postgresql";

/// Refuses a URL the driver cannot use (an unknown parameter, a bad value, no host) before
/// anything is computed, naming it as `shown` (without its password).
pub fn check_url(shown: &str, url: &str) -> Result<()> {
    let bad = |what: String| {
        Error::usage(
            format!("bad PostgreSQL URL '{shown}': {what}"),
            "write postgres://USER:PASSWORD@HOST:PORT/DATABASE?table=NAME, with libpq's \
             parameters (sslmode, connect_timeout, …); what it leaves out comes from PGHOST, \
             PGPORT, PGUSER, PGDATABASE and PGPASSWORD",
        )
    };
    let config = settings(url).map_err(bad)?;
    match config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        true => Err(bad(format!(
            "no host (nor PGHOST; for a Unix socket: ?host={SOCKET_FOLDER})"
        ))),
        false => Ok(()),
    }
}

/// A certificate refused for its issuer or its name, with what to change in the URL.
fn with_certificate_hint(detail: String) -> String {
    let hint = if detail.contains("UnknownIssuer") {
        " (no trusted CA signed the server's certificate: add sslrootcert=FILE, the PEM of the CA \
         that did, to the URL)"
    } else if detail.contains("not valid for name") {
        " (the certificate does not name the host in the URL: connect by a name it holds, or use \
         sslmode=verify-ca to check only its CA)"
    } else {
        ""
    };
    format!("{detail}{hint}")
}

pub async fn write(
    ctx: &SessionContext,
    url: &str,
    tls: &Tls,
    table: &str,
    schema: SchemaRef,
    key: &[&str],
    (from, to): (NaiveDate, NaiveDate),
) -> Result<u64> {
    let shown = without_password(url);
    let sink = |detail: String| Error::Sink {
        dest: format!("{shown} table {table}"),
        detail,
    };
    let mut config = settings(url).map_err(sink)?;
    let password = find_password(&mut config);
    let failed = |e: tokio_postgres::Error| {
        sink(match e.as_db_error() {
            Some(db) if db.code() == &SqlState::INVALID_PASSWORD => {
                format!("{} ({password})", db.message())
            }
            Some(db) if db.code() == &SqlState::LOCK_NOT_AVAILABLE => format!(
                "{} ({} s): another session holds a lock on table {table} (a transaction left \
                 open, or another export)",
                db.message(),
                super::BUSY_TIMEOUT.as_secs()
            ),
            Some(db) => db.message().to_string(),
            None if chain(&e).ends_with("password missing") => {
                format!("the server asks for a password, and {password}")
            }
            None => with_certificate_hint(chain(&e)),
        })
    };
    let batches = ctx.table("new").await?.collect().await?;
    config.ssl_mode(tls.ssl_mode());
    let connector = tls.connector()?;
    // tokio-postgres bounds only the TCP connect by `connect_timeout`; libpq bounds the whole
    // opening, so a server that takes the connection and never answers (frozen, or a stuck
    // proxy) hung a nightly export for good, never alerted.
    let limit = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let opening = async {
        match config.connect(connector.clone()).await {
            // As libpq does with `prefer`: a server whose TLS fails is tried again without it.
            Err(e) if tls.mode == Mode::Prefer && e.to_string().contains("TLS handshake") => {
                config.ssl_mode(SslMode::Disable);
                config.connect(connector).await
            }
            connected => connected,
        }
    };
    let (mut client, connection) = tokio::time::timeout(limit, opening)
        .await
        .map_err(|_| {
            sink(format!(
                "the server took the connection but did not answer within {} s \
                 (connect_timeout in the URL, or PGCONNECT_TIMEOUT)",
                limit.as_secs()
            ))
        })?
        .map_err(failed)?;
    let connection = tokio::spawn(connection);

    let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
    let tx = client.transaction().await.map_err(failed)?;
    // Days are UTC midnights: in the server's own zone (America/New_York, say), `date::date` of a
    // `timestamptz` day (as pandas writes them) was the day before, and a re-export deleted the
    // wrong day. A lock held by a session left open waits at most as long as SQLite's.
    tx.batch_execute(&format!(
        "SET LOCAL timezone = 'UTC'; SET LOCAL lock_timeout = '{}s'",
        super::BUSY_TIMEOUT.as_secs()
    ))
    .await
    .map_err(failed)?;
    // Exports into one table at once (a backfill run in parallel) take turns: two that both
    // found no table would both make it, and one would fail.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(table)])
        .await
        .map_err(failed)?;
    // Made only when absent: a role that may write a table need not be allowed to create one
    // (PostgreSQL 15 lets no one but the owner create in the schema public).
    let mut found = columns(&tx, table).await.map_err(failed)?;
    if found.is_empty() {
        // `CREATE TABLE DailyDau` made `dailydau`: a second table, `"DailyDau"`, would take the
        // rows where nobody reads them.
        if let Some(other) = spelled_otherwise(&tx, table).await.map_err(failed)? {
            return Err(Error::usage(
                format!("there is no table {table} in {shown}, but there is {other}"),
                format!("names are case-sensitive: give ?table={other}"),
            ));
        }
        let create = create_table(table, &schema, &key, sql_type);
        tx.batch_execute(&create)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) if db.code() == &SqlState::INSUFFICIENT_PRIVILEGE => sink(format!(
                    "{}: there is no table {table}, and this role may not make one: make it as \
                     its owner ({}), or grant this role CREATE on the schema",
                    db.message(),
                    create.trim_end_matches(';')
                )),
                _ => failed(e),
            })?;
        found = columns(&tx, table).await.map_err(failed)?;
    }
    super::table_columns(&format!("table {table} in {shown}"), &found, &schema)?;
    let quoted = quote_table(table);

    // `date::date`: a table made by hand may keep its days as text (or as timestamps).
    tx.execute(
        &format!("DELETE FROM {quoted} WHERE date::date BETWEEN $1::date AND $2::date"),
        &[&from, &to],
    )
    .await
    .map_err(failed)?;
    let dates: Vec<NaiveDate> = dates_of(&batches).into_iter().collect();
    tx.execute(
        &format!("DELETE FROM {quoted} WHERE date::date = ANY($1::date[])"),
        &[&dates],
    )
    .await
    .map_err(failed)?;
    // COPY, in PostgreSQL's text format: millions of user-days rows go in seconds. The server
    // reads each value as the table's own type (`dau integer`, `mau numeric` in a table made by
    // hand), and refuses one that does not fit, so that nothing is written.
    let copy = format!("COPY {quoted} {} FROM STDIN", super::column_list(&schema));
    let sink = tx.copy_in(&copy).await.map_err(failed)?;
    futures::pin_mut!(sink);
    for batch in &batches {
        let mut text = Vec::new();
        for row in 0..batch.num_rows() {
            for (at, column) in batch.columns().iter().enumerate() {
                if at > 0 {
                    text.push(b'\t');
                }
                cell(column, row).write_to(&mut text);
            }
            text.push(b'\n');
        }
        futures::SinkExt::send(&mut sink, bytes::Bytes::from(text))
            .await
            .map_err(failed)?;
    }
    sink.as_mut().finish().await.map_err(failed)?;
    let rows: i64 = tx
        .query_one(&format!("SELECT COUNT(*) FROM {quoted}"), &[])
        .await
        .map_err(failed)?
        .get(0);
    tx.commit().await.map_err(failed)?;
    drop(client);
    let _ = connection.await;
    Ok(rows as u64)
}

/// The columns of `table` (`TABLE` as the search path finds it, or `SCHEMA.TABLE`), each with
/// whether it fills itself (a DEFAULT, an identity or a generated column); none when there is no
/// such table. (From the catalog: the information schema hides a table from a role that may not
/// use it. Only the current schema was looked in: a table in `public` behind a schema of the
/// role's own was not found, and a second one was made there.)
async fn columns(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
) -> std::result::Result<Vec<(String, bool)>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT a.attname::text, a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.oid = to_regclass($1) \
             AND c.relkind IN ('r', 'p', 'v', 'f', 'm') AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&quote_table(table)],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// A table the search path finds (or in the schema `table` names) whose name differs from
/// `table`'s only in case.
async fn spelled_otherwise(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
) -> std::result::Result<Option<String>, tokio_postgres::Error> {
    let (schema_name, table_name) = match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    };
    let row = tx
        .query_opt(
            "SELECT CASE WHEN $2::text IS NULL THEN c.relname::text \
             ELSE n.nspname || '.' || c.relname END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE lower(c.relname) = lower($1) AND c.relkind IN ('r', 'p', 'v', 'f', 'm') \
             AND CASE WHEN $2::text IS NULL THEN pg_table_is_visible(c.oid) \
             ELSE n.nspname = $2 END \
             LIMIT 1",
            &[&table_name, &schema_name],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// The advisory lock of exports into `table`: FNV-1a of its name, the same in every run.
fn lock_key(table: &str) -> i64 {
    let hash = format!("dau export {table}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    hash as i64
}

fn sql_type(t: &DataType) -> &'static str {
    match t {
        DataType::Date32 => "DATE",
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "DOUBLE PRECISION",
        DataType::UInt64 => "NUMERIC(20)",
        t if t.is_integer() => "BIGINT",
        _ => "TEXT",
    }
}

/// One value of a row, as the export has it.
enum Cell {
    Date(Option<NaiveDate>),
    Integer(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl Cell {
    /// The value in COPY's text format: `\N` for NULL, and a backslash, tab, line feed or
    /// carriage return in text escaped.
    fn write_to(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let written = match self {
            Cell::Date(Some(d)) => write!(out, "{}", d.format("%Y-%m-%d")),
            Cell::Integer(Some(n)) => write!(out, "{n}"),
            Cell::Real(Some(x)) => write!(out, "{x}"),
            Cell::Text(Some(text)) => {
                for byte in text.bytes() {
                    match byte {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        other => out.push(other),
                    }
                }
                Ok(())
            }
            _ => write!(out, "\\N"),
        };
        written.expect("writing into memory");
    }
}

fn cell(column: &ArrayRef, row: usize) -> Cell {
    let valid = column.is_valid(row);
    match column.data_type() {
        DataType::Date32 => Cell::Date(
            valid
                .then(|| column.as_primitive::<Date32Type>().value_as_date(row))
                .flatten(),
        ),
        DataType::Int64 => {
            Cell::Integer(valid.then(|| column.as_primitive::<Int64Type>().value(row)))
        }
        DataType::Int32 => {
            Cell::Integer(valid.then(|| column.as_primitive::<Int32Type>().value(row).into()))
        }
        DataType::Float64 => {
            Cell::Real(valid.then(|| column.as_primitive::<Float64Type>().value(row)))
        }
        _ => Cell::Text(valid.then(|| {
            datafusion::arrow::util::display::array_value_to_string(column, row).unwrap_or_default()
        })),
    }
}
