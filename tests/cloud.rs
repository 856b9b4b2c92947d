//! Lakes in buckets, on real servers started here on free loopback ports: a GCS JSON-API server
//! (gcp-storage-emulator) and an S3 server (moto), both from PyPI (`.ci/test-tools.sh`). The same
//! numbers as the same lake on local disk, only the needed days listed (counted in the server's
//! request log), and storage failures reported with exit 3, never a hang or a wrong number.

use std::collections::{BTreeMap, HashSet};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::util::{
    Run, Workdir, active, day, free_port, oracle_opens, oracle_window, python, read_lake_rows,
    receiver, venv,
};

/// A storage server, killed when dropped. Both servers log one line per request.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(program: &str, args: &[&str], env: &[(&str, &str)], log: PathBuf) -> Server {
        let port = free_port();
        let args = args.iter().map(|a| a.replace("PORT", &port.to_string()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(venv().join("bin").join(program))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        let server = Server { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{program} did not start: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// A GCS server with an empty bucket `lake`, its connection backlog raised (see the script).
    fn gcs(work: &Workdir) -> Server {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/gcs_server.py");
        let args = [script, "start", "--host", "127.0.0.1", "--port", "PORT"];
        let args = [&args[..], &["--default-bucket", "lake", "--in-memory"]].concat();
        Server::start("python", &args, &[], work.join("gcs.log"))
    }

    /// An S3 server with an empty bucket `lake`.
    fn s3(work: &Workdir) -> Server {
        let server = Server::moto(work, &[]);
        let made = Command::new("curl")
            .args(["-sf", "-X", "PUT", &format!("{}/lake", server.endpoint())])
            .status()
            .unwrap();
        assert!(made.success(), "cannot make the S3 bucket");
        server
    }

    fn moto(work: &Workdir, env: &[(&str, &str)]) -> Server {
        let args = ["-H", "127.0.0.1", "-p", "PORT"];
        Server::start("moto_server", &args, env, work.join("s3.log"))
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The request lines logged so far (`GET /storage/v1/b/lake/o?prefix=… HTTP/1.1`).
    fn requests(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split('"').nth(1))
            .filter(|r| r.ends_with("HTTP/1.1") || r.ends_with("HTTP/1.0"))
            .map(str::to_string)
            .collect()
    }

    /// Sends a signal to the server (`-STOP`, `-CONT`, `-KILL`).
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How `dau` reaches each kind of server: flags and environment.
struct Access {
    flags: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl Access {
    fn gcs(server: &Server) -> Access {
        Access {
            flags: vec!["--endpoint".into(), server.endpoint(), "--anonymous".into()],
            env: vec![],
        }
    }

    fn s3(server: &Server) -> Access {
        Access {
            flags: vec!["--endpoint".into(), server.endpoint()],
            env: vec![
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ],
        }
    }

    fn command(&self, work: &Workdir, args: &[&str]) -> Command {
        let mut command = work.command(args);
        command.args(&self.flags);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    fn run(&self, work: &Workdir, args: &[&str]) -> Run {
        self.command(work, args).output().unwrap().into()
    }
}

/// A GCS or an S3 server with an empty bucket `lake`, and how `dau` reaches it.
fn server_and_access(work: &Workdir, gcs: bool) -> (Server, Access) {
    let server = if gcs {
        Server::gcs(work)
    } else {
        Server::s3(work)
    };
    let access = if gcs {
        Access::gcs(&server)
    } else {
        Access::s3(&server)
    };
    (server, access)
}

/// Makes the same generated lake in the bucket (through the server's API) and on local disk.
fn gen_both(work: &Workdir, access: &Access, url: &str, local: &str, shape: &[&str]) {
    let remote = access.run(work, &[&["gen", "--out", url], shape].concat());
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    let here = work.run(&[&["gen", "--out", local], shape].concat());
    assert_eq!(here.code, 0, "{}", here.stderr);
}

/// Every metric, every SQL table function and `dau check` give on the bucket exactly what they
/// give on local disk, and DAU equals the brute-force oracle.
fn same_numbers_as_on_disk(work: &Workdir, access: &Access, url: &str) {
    let shape = [
        "--users",
        "3000",
        "--days",
        "45",
        "--start",
        "2024-05-01",
        "--files-per-day",
        "3",
    ];
    gen_both(work, access, url, "local", &shape);
    let range = [
        "--from",
        "2024-05-10",
        "--to",
        "2024-06-14",
        "--format",
        "csv",
    ];
    let metrics: [&[&str]; 8] = [
        &["dau"],
        &["wau"],
        &["mau"],
        &["wau", "--calendar"],
        &["mau", "--calendar"],
        &["opens"],
        &["stickiness"],
        &["user-days"],
    ];
    for metric in metrics {
        let args = [&["query"], metric, &range[..]].concat();
        let remote = access.run(work, &[&args[..], &["--lake", url]].concat());
        let local = work.run(&[&args[..], &["--lake", "local"]].concat());
        assert_eq!(remote.code, 0, "{metric:?}: {}", remote.stderr);
        assert!(
            remote.stdout.lines().count() > 1,
            "{metric:?}: {}",
            remote.stdout
        );
        assert_eq!(remote.stdout, local.stdout, "{metric:?}");
        assert_eq!(
            remote.stderr.replace(url, "local"),
            local.stderr,
            "{metric:?}"
        );
    }

    let rows = read_lake_rows(&work.join("local"));
    let oracle: BTreeMap<NaiveDate, Option<u64>> = active(&rows)
        .into_iter()
        .filter(|(d, _)| (day("2024-05-10")..=day("2024-06-14")).contains(d))
        .map(|(d, users)| (d, Some(users.len() as u64)))
        .collect();
    let dau = access.run(
        work,
        &[&["query", "dau", "--lake", url], &range[..]].concat(),
    );
    assert_eq!(dau.series(), oracle);

    let sql = "SELECT * FROM mau('2024-06-01', '2024-06-14') ORDER BY date";
    let remote = access.run(work, &["sql", "--lake", url, "--format", "csv", "-c", sql]);
    let local = work.run(&["sql", "--lake", "local", "--format", "csv", "-c", sql]);
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    assert_eq!(remote.stdout, local.stdout);

    let check = access.run(work, &["check", "--lake", url, "--format", "json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["problems"], 0);
    assert_eq!(report["days"].as_array().unwrap().len(), 45);
}

/// The name of every object in the server's bucket `lake`, as its own API lists them.
fn object_names(server: &Server, gcs: bool) -> Vec<String> {
    let list = match gcs {
        true => format!("{}/storage/v1/b/lake/o", server.endpoint()),
        false => format!("{}/lake?list-type=2", server.endpoint()),
    };
    let listed = Command::new("curl").args(["-sf", &list]).output().unwrap();
    assert!(listed.status.success(), "cannot list the bucket");
    let body = String::from_utf8(listed.stdout).unwrap();
    if gcs {
        let listing: serde_json::Value = serde_json::from_str(&body).unwrap();
        let items = listing["items"].as_array().unwrap();
        items
            .iter()
            .map(|i| i["name"].as_str().unwrap().into())
            .collect()
    } else {
        let keys = body.split("<Key>").skip(1);
        keys.map(|k| k.split("</Key>").next().unwrap().into())
            .collect()
    }
}

/// A prefix with a space, `#`, `%`, `;`, `@` and letters beyond ASCII, which object names may
/// hold and which a URL would otherwise escape or cut (a server takes `;…` for path parameters).
const ODD_PREFIX: &str = "événements #1 50%;v2@x/app_opens";

fn a_lake_under_an_odd_prefix_gives_the_numbers_of_the_same_lake_on_disk(gcs: bool) {
    let work = Workdir::new();
    let (server, access) = server_and_access(&work, gcs);
    let scheme = if gcs { "gs" } else { "s3" };
    same_numbers_as_on_disk(&work, &access, &format!("{scheme}://lake/{ODD_PREFIX}"));
    // Named as written, not escaped: other tools reading the bucket find the same lake.
    let names = object_names(&server, gcs);
    let parquet = format!("{ODD_PREFIX}/date=2024-05-01/part-00000.parquet");
    assert!(names.contains(&parquet), "{parquet} not in {names:?}");
}

#[test]
fn a_gcs_lake_gives_the_numbers_of_the_same_lake_on_disk() {
    a_lake_under_an_odd_prefix_gives_the_numbers_of_the_same_lake_on_disk(true);
}

#[test]
fn an_s3_lake_gives_the_numbers_of_the_same_lake_on_disk() {
    a_lake_under_an_odd_prefix_gives_the_numbers_of_the_same_lake_on_disk(false);
}

#[test]
fn the_emulator_variable_points_dau_at_a_gcs_emulator_as_google_clients_do() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let emulator = (
        "STORAGE_EMULATOR_HOST",
        format!("127.0.0.1:{}", server.port),
    );
    let access = Access {
        flags: vec![],
        env: vec![emulator],
    };
    let made = access.run(&work, &["gen", "--out", "gs://lake/x", "--days", "3"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let run = access.run(
        &work,
        &["query", "dau", "--lake", "gs://lake/x", "--format", "csv"],
    );
    assert_eq!(run.csv().len(), 4, "{}", run.stdout);
}

/// Requests since `before` that read a Parquet file of the lake.
fn parquet_reads(server: &Server, before: usize) -> usize {
    let requests = server.requests();
    let reads = requests[before..].iter();
    reads
        .filter(|r| r.starts_with("GET") && r.contains(".parquet"))
        .count()
}

/// `dau ARGS` on the bucket lake `url` with its rollups in `kept`, and on the same lake on disk
/// (`local`) with the reference SQL: both succeed with the same rows. Both runs, for their
/// warnings.
fn as_on_disk(work: &Workdir, access: &Access, args: &[&str], url: &str, kept: &str) -> (Run, Run) {
    let remote = access.run(work, &[args, &["--lake", url, "--rollups", kept]].concat());
    let local = work.run(&[args, &["--lake", "local", "--engine", "sql"]].concat());
    assert_eq!(remote.code, 0, "{args:?}: {}", remote.stderr);
    assert_eq!(local.code, 0, "{args:?}: {}", local.stderr);
    assert_eq!(remote.stdout, local.stdout, "{args:?}");
    (remote, local)
}

/// Rollups kept in the bucket (`--rollups URL`) are made by one run and used by every other:
/// once `dau rollup` has run, queries read no Parquet at all and give the numbers of the same lake
/// on disk; a day changed in the bucket is read again, and only that day.
fn rollups_in_the_bucket(work: &Workdir, server: &Server, access: &Access, url: &str) {
    let shape = ["--users", "800", "--days", "20", "--start", "2024-05-01"];
    let shape = [&shape[..], &["--files-per-day", "2"]].concat();
    gen_both(work, access, url, "local", &shape);
    let kept = format!("{url}/_dau");
    let rollup = |from: &str, to: &str| {
        let args = ["--rollups", &kept, "rollup", "--lake", url, "--from", from];
        let run = access.run(work, &[&args[..], &["--to", to]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    // A query of the first ten days makes the dictionary; the next ten add ids to it (a
    // conditional put).
    let ten = [
        "query",
        "dau",
        "--lake",
        url,
        "--rollups",
        &kept,
        "--to",
        "2024-05-10",
    ];
    let ten = access.run(work, &[&ten[..], &["--from", "2024-05-01"]].concat());
    assert_eq!(ten.code, 0, "{}", ten.stderr);
    let all = rollup("2024-05-01", "2024-05-20");
    assert!(
        all.contains("10 rolled up now, 10 already current"),
        "{all}"
    );
    assert!(all.contains(&format!("rollups: {kept}/")), "{all}");

    let range = [
        "--from",
        "2024-05-01",
        "--to",
        "2024-05-20",
        "--format",
        "csv",
    ];
    let same_as_on_disk = || {
        for metric in ["dau", "wau", "mau", "opens", "stickiness"] {
            let args = [&["query", metric][..], &range[..]].concat();
            let (remote, local) = as_on_disk(work, access, &args, url, &kept);
            assert_eq!(
                remote.stderr.replace(url, "local"),
                local.stderr,
                "{metric}"
            );
        }
    };
    let before = server.requests().len();
    same_as_on_disk();
    assert_eq!(
        parquet_reads(server, before),
        0,
        "rollups in the bucket were not used"
    );
    let rows = read_lake_rows(&work.join("local"));
    let dau = access.run(
        work,
        &[
            &["query", "dau", "--lake", url, "--rollups", &kept],
            &range[..],
        ]
        .concat(),
    );
    let oracle = active(&rows)
        .into_iter()
        .map(|(d, users)| (d, Some(users.len() as u64)))
        .collect::<BTreeMap<_, _>>();
    assert_eq!(dau.series(), oracle);

    // Another file in one day, in the bucket and on disk: that day alone is read again.
    let extra = ["gen", "--out", "extra", "--users", "900", "--days", "1"];
    let made = work.run(&[&extra[..], &["--start", "2024-05-07", "--seed", "9"]].concat());
    assert_eq!(made.code, 0, "{}", made.stderr);
    let file = work.join("extra/date=2024-05-07/part-00000.parquet");
    std::fs::copy(&file, work.join("local/date=2024-05-07/extra.parquet")).unwrap();
    upload(server, url, "date=2024-05-07/extra.parquet", &file);
    let again = rollup("2024-05-01", "2024-05-20");
    assert!(
        again.contains("1 rolled up now, 19 already current"),
        "{again}"
    );
    same_as_on_disk();
}

/// Puts `file` into the lake `url` (in the server's bucket `lake`) as `name`, through the
/// server's own API (S3 through boto3, signed: moto refuses an unsigned put over an object).
fn upload(server: &Server, url: &str, name: &str, file: &std::path::Path) {
    upload_at(&server.endpoint(), url, name, file);
}

/// [`upload`] to the server at `endpoint`.
fn upload_at(endpoint: &str, url: &str, name: &str, file: &std::path::Path) {
    let name = format!("{}/{name}", url.split_once("//lake/").unwrap().1);
    let sent = match url.starts_with("gs://") {
        true => {
            let escaped = utf8_percent_encode(&name, NON_ALPHANUMERIC);
            let upload = format!(
                "{}/upload/storage/v1/b/lake/o?uploadType=media&name={escaped}",
                endpoint,
            );
            Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "-X", "POST"])
                .args(["-H", "content-type: application/octet-stream"])
                .arg("--data-binary")
                .arg(format!("@{}", file.display()))
                .arg(&upload)
                .status()
                .unwrap()
        }
        false => {
            let script = "import boto3, sys; s3 = boto3.client('s3', endpoint_url=sys.argv[1], \
                          region_name='us-east-1', aws_access_key_id='test', \
                          aws_secret_access_key='test'); \
                          s3.put_object(Bucket='lake', Key=sys.argv[2], Body=open(sys.argv[3], 'rb').read())";
            Command::new(venv().join("bin/python"))
                .args(["-c", script, endpoint, &name])
                .arg(file)
                .status()
                .unwrap()
        }
    };
    assert!(sent.success(), "cannot upload {name}");
}

/// In a bucket, a day without `_SUCCESS` (seen in the day's listing) while the others have it
/// is warned of, and with `--done-marker _SUCCESS` is missing; the other days are the oracle's.
#[test]
fn a_gcs_day_without_its_done_marker_is_unfinished() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    let url = "gs://lake/events";
    let shape = ["--users", "500", "--days", "6", "--start", "2024-05-01"];
    gen_both(&work, &access, url, "local", &shape);
    std::fs::write(work.join("done"), "done").unwrap();
    for d in 1..=5 {
        let name = format!("date=2024-05-0{d}/_SUCCESS");
        upload(&server, url, &name, &work.join("done"));
    }
    let oracle: BTreeMap<NaiveDate, Option<u64>> = active(&read_lake_rows(&work.join("local")))
        .into_iter()
        .map(|(d, users)| (d, Some(users.len() as u64)))
        .collect();
    let query = [
        "query",
        "dau",
        "--lake",
        url,
        "--rollups",
        "off",
        "-f",
        "csv",
    ];
    let run = access.run(&work, &query);
    assert_eq!(run.series(), oracle, "{}", run.stderr);
    let noticed =
        format!("1 day(s) have no _SUCCESS in {url} while 5 other day(s) have it: 2024-05-06");
    assert!(run.stderr.contains(&noticed), "{}", run.stderr);

    let run = access.run(
        &work,
        &[&query[..], &["--done-marker", "_SUCCESS"]].concat(),
    );
    let mut want = oracle.clone();
    want.insert(day("2024-05-06"), None);
    assert_eq!(run.series(), want, "{}", run.stderr);
    let warning = format!("1 day(s) have no _SUCCESS yet in {url} (--done-marker): 2024-05-06");
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
}

/// A lake copied into a bucket from where Spark's file sink wrote it (its log names the files by
/// their old `hdfs://` paths): only the files the log lists are counted, in both engines; a
/// failed batch's copy of a file is not.
#[test]
fn a_gcs_lake_with_a_spark_log_counts_only_the_files_it_lists() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    let url = "gs://lake/events";
    let shape = ["--users", "400", "--days", "3", "--start", "2024-05-01"];
    gen_both(&work, &access, url, "local", &shape);
    let file = |d: u32| format!("date=2024-05-0{d}/part-00000.parquet");
    let log: String = (1..=3)
        .map(|d| {
            let path = format!("hdfs://nn:8020/warehouse/events/{}", file(d));
            format!("\n{{\"path\":\"{path}\",\"size\":1,\"isDir\":false,\"action\":\"add\"}}")
        })
        .collect();
    std::fs::write(work.join("0"), format!("v1{log}")).unwrap();
    upload(&server, url, "_spark_metadata/0", &work.join("0"));
    let failed = "date=2024-05-01/part-00000-failed.parquet";
    upload(&server, url, failed, &work.join("local").join(file(1)));

    let rows = read_lake_rows(&work.join("local"));
    let oracle = oracle_opens(&rows);
    for engine in ["sql", "bitmap"] {
        let query = [
            "query", "opens", "--lake", url, "-f", "csv", "--engine", engine,
        ];
        let run = access.run(&work, &query);
        assert_eq!(run.first_fields(3), oracle, "{engine}");
    }
    let check = access.run(&work, &["check", "--lake", url]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains(&format!("            {url}/{failed}\n")),
        "{}",
        check.stdout
    );
}

/// A lake in a bucket partitioned by a column of timestamps, its folders named as writers name them
/// there (`date=2024-05-01%2000%3A00%3A00`, the `%` in the object's name; Spark's with a space):
/// both engines give the oracle's numbers.
fn timestamp_partitions_in_a_bucket(gcs: bool) {
    let work = Workdir::new();
    let (server, access) = server_and_access(&work, gcs);
    let url = if gcs {
        "gs://lake/events"
    } else {
        "s3://lake/events"
    };
    let shape = ["--users", "400", "--days", "3", "--start", "2024-05-01"];
    let made = work.run(&[&["gen", "--out", "local"], &shape[..]].concat());
    assert_eq!(made.code, 0, "{}", made.stderr);
    for (d, folder) in [
        (1, "date=2024-05-01%2000%3A00%3A00.000000000"),
        (2, "date=2024-05-02%2000%3A00%3A00"),
        (3, "date=2024-05-03 00%3A00%3A00"),
    ] {
        let file = work.join(&format!("local/date=2024-05-0{d}/part-00000.parquet"));
        upload(&server, url, &format!("{folder}/part-00000.parquet"), &file);
    }
    let rows = read_lake_rows(&work.join("local"));
    let oracle = oracle_opens(&rows);
    assert_eq!(oracle.len(), 3);
    for engine in ["sql", "bitmap"] {
        let query = [
            "query", "opens", "--lake", url, "-f", "csv", "--engine", engine,
        ];
        let run = access.run(&work, &query);
        assert_eq!(run.code, 0, "{engine}: {}", run.stderr);
        assert_eq!(run.first_fields(3), oracle, "{engine}");
    }
}

#[test]
fn a_gcs_lake_partitioned_by_timestamps_names_its_days() {
    timestamp_partitions_in_a_bucket(true);
}

#[test]
fn an_s3_lake_partitioned_by_timestamps_names_its_days() {
    timestamp_partitions_in_a_bucket(false);
}

/// A row group without rows has column chunks of no bytes (pyarrow writes them without a
/// dictionary): a day of such a file counts no users, and one beside a day's files changes
/// nothing, in a bucket as on disk, in both engines. GCS and S3 refuse an empty range, and the
/// whole query failed, exit 3, blaming the endpoint.
fn a_row_group_without_rows_in_a_bucket(gcs: bool) {
    let work = Workdir::new();
    let (server, access) = server_and_access(&work, gcs);
    let url = if gcs {
        "gs://lake/events"
    } else {
        "s3://lake/events"
    };
    let shape = ["--users", "300", "--days", "3", "--start", "2024-05-01"];
    gen_both(&work, &access, url, "local", &shape);
    let write = "import pyarrow as pa, pyarrow.parquet as pq; \
                 pq.write_table(pa.table({'userId': pa.array([], pa.int64())}), 'empty.parquet', \
                 use_dictionary=False)";
    python(work.path(), &["-c", write]);
    for name in [
        "date=2024-05-04/part-0.parquet",
        "date=2024-05-02/empty.parquet",
    ] {
        upload(&server, url, name, &work.join("empty.parquet"));
        let local = work.join("local").join(name);
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        std::fs::copy(work.join("empty.parquet"), local).unwrap();
    }
    let mut oracle: BTreeMap<NaiveDate, Option<u64>> = active(&read_lake_rows(&work.join("local")))
        .into_iter()
        .map(|(d, users)| (d, Some(users.len() as u64)))
        .collect();
    oracle.insert(day("2024-05-04"), Some(0));
    let query = [
        "query",
        "dau",
        "--lake",
        url,
        "-f",
        "csv",
        "--rollups",
        "off",
    ];
    for engine in ["bitmap", "sql"] {
        let run = access.run(&work, &[&query[..], &["--engine", engine]].concat());
        assert_eq!(run.code, 0, "{engine}: {}", run.stderr);
        assert_eq!(run.series(), oracle, "{engine}: {}", run.stderr);
    }
}

#[test]
fn a_row_group_without_rows_in_a_gcs_lake_is_no_users() {
    a_row_group_without_rows_in_a_bucket(true);
}

#[test]
fn a_row_group_without_rows_in_an_s3_lake_is_no_users() {
    a_row_group_without_rows_in_a_bucket(false);
}

/// `gs://lake/events/app=*`: the lakes of both apps in the bucket, counted as one, give the
/// oracle's numbers over both apps' rows, in both engines; `events` says which app.
#[test]
fn a_pattern_names_the_lakes_of_a_bucket_counted_as_one() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    let mut rows = Vec::new();
    for (app, seed) in [("ios", "1"), ("android", "2")] {
        let shape = ["--users", "300", "--days", "4", "--seed", seed];
        let url = format!("gs://lake/events/app={app}");
        gen_both(&work, &access, &url, &format!("local/app={app}"), &shape);
        rows.extend(read_lake_rows(&work.join(&format!("local/app={app}"))));
    }
    let oracle = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-04"), &[]);
    for engine in ["sql", "bitmap"] {
        let query = [
            "query",
            "dau",
            "--lake",
            "gs://lake/events/app=*",
            "-f",
            "csv",
            "--engine",
            engine,
        ];
        let run = access.run(&work, &query);
        assert_eq!(run.series(), oracle, "{engine}");
    }
    let sql = "SELECT count(DISTINCT app) FROM events";
    let run = access.run(
        &work,
        &[
            "sql",
            "--lake",
            "gs://lake/events/app=*",
            "--format",
            "csv",
            "-c",
            sql,
        ],
    );
    assert_eq!(run.csv()[1], ["2"]);
}

/// An S3 lake with folder markers: the empty `NAME_$folder$` objects Amazon EMR's file system
/// leaves beside each folder it makes (beside the partitions, and inside them for their
/// sub-folders), and the empty `NAME/` objects that Hadoop's S3A (when it keeps its markers)
/// and the S3 console make for folders, the lake's own too, and empty ones inside days, are not
/// data files: the lake gives the oracle's numbers in both engines, and `dau check` finds nothing
/// wrong. Rollups inside a day are refused.
#[test]
fn an_s3_lake_reads_its_folder_markers_as_no_data() {
    let work = Workdir::new();
    let server = Server::s3(&work);
    let access = Access::s3(&server);
    let url = "s3://lake/events";
    let shape = ["--users", "300", "--days", "3", "--start", "2024-05-01"];
    gen_both(&work, &access, url, "local", &shape);
    let empty = work.join("empty");
    std::fs::write(&empty, b"").unwrap();
    for marker in [
        "date=2024-05-01_$folder$",
        "date=2024-05-02_$folder$",
        "date=2024-05-02/hour=00_$folder$",
        "",
        "date=2024-05-03/",
        "date=2024-05-03/hour=00/",
        "date=2024-05-04/",
        // Markers of folders with nothing in them, inside days (an empty file there, exit 4).
        "date=2024-05-01/sub/",
        "date=2024-05-02/hour=01/",
        "date=2024-05-02/Sub Folder/",
    ] {
        upload(&server, url, marker, &empty);
    }
    // Files below the marker of hour=00, from another lake's 2024-05-03.
    let other = work.run(&[&["gen", "--out", "other", "--seed", "9"], &shape[..]].concat());
    assert_eq!(other.code, 0, "{}", other.stderr);
    let hour = "date=2024-05-03/hour=00/part-00000.parquet";
    upload(
        &server,
        url,
        hour,
        &work.join("other/date=2024-05-03/part-00000.parquet"),
    );
    let mut rows = read_lake_rows(&work.join("local"));
    let more = read_lake_rows(&work.join("other"));
    rows.extend(more.into_iter().filter(|(d, _)| *d == day("2024-05-03")));
    // A partition folder made, and no file written in it yet: missing, not 0.
    let (first, last) = (day("2024-05-01"), day("2024-05-04"));
    let oracle = oracle_window(&rows, 1, first, last, &[last]);
    // (Also as Spark and Hadoop spell the bucket.)
    for (engine, lake) in [
        ("sql", url),
        ("bitmap", url),
        ("bitmap", "s3a://lake/events"),
    ] {
        let query = [
            "query", "dau", "--lake", lake, "-f", "csv", "--engine", engine,
        ];
        let run = access.run(&work, &query);
        assert_eq!(run.series(), oracle, "{engine} {lake}");
    }
    let check = access.run(&work, &["check", "--lake", url, "--to", "2024-05-03"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    // Rollups in a day's folder would be read as its data: refused, however the bucket is
    // spelled (s3a:// was let through), and in a lake at a bucket's root (it was let through:
    // an export into a day's folder changed the day's numbers).
    for inside in [
        format!("{url}/date=2024-05-02"),
        "s3a://lake/events/date=2024-05-02/".into(),
    ] {
        let run = access.run(&work, &["rollup", "--lake", url, "--rollups", &inside]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("is inside the lake"), "{}", run.stderr);
    }
    let made = Command::new("curl")
        .args(["-sf", "-X", "PUT", &format!("{}/root", server.endpoint())])
        .status()
        .unwrap();
    assert!(made.success());
    let made = access.run(
        &work,
        &[&["gen", "--out", "s3://root"], &shape[..]].concat(),
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let into_a_day = "s3://root/date=2024-05-02/x.parquet";
    let export = [
        "export",
        "dau",
        "--lake",
        "s3://root",
        "--date",
        "2024-05-02",
        "-o",
    ];
    let run = access.run(&work, &[&export[..], &[into_a_day]].concat());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("is inside the lake"), "{}", run.stderr);
    let beside = "s3://root/_dau/daily.csv";
    let run = access.run(&work, &[&export[..], &[beside]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn rollups_in_a_gcs_bucket_are_shared_and_kept_current() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    rollups_in_the_bucket(&work, &server, &Access::gcs(&server), "gs://lake/events");
    // The dictionary is put only over the generation read (this server does not check it).
    let expected: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST") && r.contains("name=events%2F_dau%2F"))
        .filter(|r| r.contains("%2Fids"))
        .map(|r| {
            let asked = r.split("ifGenerationMatch=").nth(1).unwrap_or("none");
            asked.split([' ', '&']).next().unwrap().to_string()
        })
        .collect();
    assert!(expected.len() >= 2, "{expected:?}");
    assert_eq!(expected[0], "0", "made only if there is none");
    assert!(
        expected[1..]
            .iter()
            .all(|g| g.parse::<u64>().is_ok_and(|g| g > 0)),
        "{expected:?}"
    );
}

#[test]
fn rollups_in_an_s3_bucket_are_shared_and_kept_current() {
    let work = Workdir::new();
    let server = Server::s3(&work);
    let access = Access::s3(&server);
    rollups_in_the_bucket(&work, &server, &access, "s3://lake/events");

    // Rollups in a bucket that is not there: a query warns and still gives the lake's numbers;
    // `dau rollup`, whose whole job they are, fails (exit 2) naming the place.
    let (url, nowhere) = ("s3://lake/events", "s3://no-such-bucket/_dau");
    let query = ["query", "dau", "--format", "csv"];
    let range = ["--from", "2024-05-01", "--to", "2024-05-20"];
    let (warned, _) = as_on_disk(&work, &access, &[&query[..], &range].concat(), url, nowhere);
    let said = "dau: warning: could not keep rollups in s3://no-such-bucket/_dau/";
    assert!(warned.stderr.contains(said), "{}", warned.stderr);
    let rollup = ["rollup", "--lake", url, "--rollups", nowhere];
    let failed = access.run(&work, &rollup);
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("s3://no-such-bucket/_dau/"),
        "{}",
        failed.stderr
    );
}

/// Two `dau rollup`s at once over one bucket's rollups, both making and extending its
/// dictionary: both finish and keep their days (a run that loses the race reads its days again
/// with the winner's dictionary), and the rollups give the numbers of the same lake on disk.
#[test]
fn two_rollups_at_once_into_an_s3_bucket_both_keep_their_days() {
    let work = Workdir::new();
    let server = Server::s3(&work);
    let all = two_rollups_at_once(&work, &Access::s3(&server), "s3://lake/events", false);
    assert!(
        all.stdout.contains("0 rolled up now, 30 already current"),
        "{}",
        all.stdout
    );
}

/// The same on the GCS test server, which does not enforce `ifGenerationMatch`: both runs extend
/// the dictionary from the same state, and the one put last replaces the other's. The other's
/// rollups then record a state the dictionary never went through, and are read again rather than
/// joined with indices the dictionary gives to other users: the numbers are still the lake's.
#[test]
fn two_rollups_at_once_on_a_store_that_ignores_conditional_puts_give_the_lakes_numbers() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let all = two_rollups_at_once(&work, &Access::gcs(&server), "gs://lake/events", true);
    assert!(all.stdout.contains("30 day(s)"), "{}", all.stdout);
}

/// Rolls up the two halves of a 30-day lake at `url` at once (after its first day alone, so that
/// both extend a dictionary that exists, with `first_day_before`); checks both runs, and dau, mau
/// and opens against the lake on disk; gives what a third `dau rollup` of every day says.
fn two_rollups_at_once(work: &Workdir, access: &Access, url: &str, first_day_before: bool) -> Run {
    let shape = ["--users", "3000", "--days", "30", "--start", "2024-05-01"];
    gen_both(work, access, url, "local", &shape);
    let kept = format!("{url}/_dau");
    let mut halves = [("2024-05-01", "2024-05-15"), ("2024-05-16", "2024-05-30")];
    if first_day_before {
        let first = [
            "--rollups",
            &kept,
            "query",
            "dau",
            "--lake",
            url,
            "--to",
            "2024-05-01",
        ];
        assert_eq!(access.run(work, &first).code, 0);
        halves[0].0 = "2024-05-02";
    }
    let runs: Vec<Child> = halves
        .iter()
        .map(|(from, to)| {
            let args = [
                "--rollups",
                &kept,
                "rollup",
                "--lake",
                url,
                "--from",
                from,
                "--to",
                to,
            ];
            let mut command = access.command(work, &args);
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for run in runs {
        let run = wait(run, Duration::from_secs(120));
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(!run.stderr.contains("could not keep"), "{}", run.stderr);
    }
    for metric in ["dau", "mau", "opens"] {
        let args = ["query", metric, "--format", "csv"];
        as_on_disk(work, access, &args, url, &kept);
    }
    let all = ["--rollups", &kept, "rollup", "--lake", url];
    access.run(work, &all)
}

/// Runs that read a bucket's dictionary at the same time and each add ids: the first to save it
/// wins, the other is told and keeps nothing (its indices are not the bucket's), whether the
/// dictionary is being made or extended; the bucket keeps the winner's indices.
#[test]
fn of_two_runs_that_add_ids_to_a_bucket_dictionary_at_once_only_the_first_keeps_them() {
    use clap::Parser;
    use dau::lake::{Lake, dictionary::Dictionary, rollup::Rollups};
    use std::sync::RwLock;

    let work = Workdir::new();
    let server = Server::s3(&work);
    // Open to anonymous requests: this process has no credentials to give the store.
    let endpoint = server.endpoint();
    let open = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read-write",
            "--data",
            "",
        ])
        .arg(format!("{endpoint}/lake?acl"))
        .status()
        .unwrap();
    assert!(open.success());
    let made = Access::s3(&server).run(&work, &["gen", "--out", "s3://lake/e", "--days", "2"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let flags = [
        "--endpoint",
        &endpoint,
        "--anonymous",
        "--rollups",
        "s3://lake/e/_dau",
    ];
    let cli = dau::cli::Cli::parse_from([&["dau"], &flags[..], &["query", "dau"]].concat());
    let config = dau::config::Config::resolve(&cli.global).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let lake = Lake::open("s3://lake/e", &config, None).await.unwrap();
        let rollups = Rollups::of(&lake, &config).unwrap().unwrap();
        let mut kept: Vec<u64> = Vec::new();
        for (winner, loser) in [(10u64, 20u64), (30, 40)] {
            let (mut first, a) = rollups.begin().await.unwrap();
            let (mut second, b) = rollups.begin().await.unwrap();
            let (a, b) = (RwLock::new(a), RwLock::new(b));
            let next = kept.len() as u32;
            assert_eq!(Dictionary::shared_indices(&a, &[winner]), Some(vec![next]));
            assert_eq!(Dictionary::shared_indices(&b, &[loser]), Some(vec![next]));
            rollups.save_dictionary(&mut first, &a).await.unwrap();
            let raced = rollups.save_dictionary(&mut second, &b).await.unwrap_err();
            assert!(Rollups::lost_race(&raced), "{raced}");
            kept.push(winner);
            let (_, stored) = rollups.begin().await.unwrap();
            let indices = Dictionary::shared_indices(&RwLock::new(stored), &kept);
            assert_eq!(indices, Some((0..kept.len() as u32).collect::<Vec<_>>()));
        }
    });
}

/// Requests since `before` that list (`…/o?prefix=`) and that read objects (`alt=media`).
fn counted(server: &Server, before: usize) -> (usize, usize) {
    let requests = server.requests();
    let new = &requests[before..];
    let lists = new.iter().filter(|r| r.contains("/o?prefix=")).count();
    let reads = new.iter().filter(|r| r.contains("alt=media")).count();
    (lists, reads)
}

#[test]
fn a_week_of_a_three_year_lake_lists_about_a_week_of_prefixes() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    for layout in ["date", "nested"] {
        let url = format!("gs://lake/{layout}");
        let local = format!("local-{layout}");
        let shape = [
            "--users",
            "40",
            "--days",
            "1096",
            "--start",
            "2023-01-01",
            "--layout",
            layout,
        ];
        gen_both(&work, &access, &url, &local, &shape);

        let week = [
            "--from",
            "2024-06-10",
            "--to",
            "2024-06-16",
            "--format",
            "csv",
        ];
        let before = server.requests().len();
        let dau = access.run(
            &work,
            &[&["query", "dau", "--lake", &url], &week[..]].concat(),
        );
        let (lists, reads) = counted(&server, before);
        // Every day has a partition; a day without events is a real 0.
        let rows = read_lake_rows(&work.join(&local));
        let rows_of_week: Vec<_> = rows
            .iter()
            .filter(|r| (day("2024-06-10")..=day("2024-06-16")).contains(&r.0))
            .copied()
            .collect();
        let active = active(&rows);
        let oracle: BTreeMap<NaiveDate, Option<u64>> = (10..=16)
            .map(|d| day(&format!("2024-06-{d}")))
            .map(|d| {
                (
                    d,
                    Some(active.get(&d).map_or(0, |users| users.len() as u64)),
                )
            })
            .collect();
        assert_eq!(dau.series(), oracle, "{layout}");
        // The root (and for nested folders the years, the months around the week and the
        // first and last month), then one listing per day: never one per day of the lake.
        let most = if layout == "date" {
            1 + 7
        } else {
            1 + 2 + 6 + 7
        };
        assert!(lists <= most, "{layout}: {lists} list requests for a week");
        // One file a day: its footer, then its data, in a few ranged reads.
        assert!(reads <= 7 * 4, "{layout}: {reads} reads for a week");

        // A trailing-30-day MAU of the week reads the 29 days before it too, and no more.
        let before = server.requests().len();
        let mau = access.run(
            &work,
            &[&["query", "mau", "--lake", &url], &week[..]].concat(),
        );
        assert_eq!(mau.code, 0, "{}", mau.stderr);
        let (lists, _) = counted(&server, before);
        assert!(
            lists <= most + 29,
            "{layout}: {lists} list requests for a week of MAU"
        );

        // `dau sql` starts on the newest day's footers, and a statement lists the days it reads.
        let before = server.requests().len();
        let statement = "SELECT COUNT(DISTINCT \"userId\") AS users FROM events \
                         WHERE date BETWEEN '2024-06-10' AND '2024-06-16'";
        let sql = access.run(
            &work,
            &["sql", "--lake", &url, "--format", "csv", "-c", statement],
        );
        let users: HashSet<u64> = rows_of_week.iter().map(|r| r.1).collect();
        assert_eq!(
            sql.stdout,
            format!("users\n{}\n", users.len()),
            "{}",
            sql.stderr
        );
        let (lists, reads) = counted(&server, before);
        // (Nested folders are walked whole, a listing per year and per month: 40 for 3 years.)
        let walk = if layout == "date" { 1 } else { 1 + 3 + 37 };
        assert!(
            lists <= walk + 1 + 7,
            "{layout}: {lists} list requests for a week in SQL"
        );
        assert!(reads <= 8 * 4, "{layout}: {reads} reads for a week in SQL");
    }
}

#[test]
fn a_missing_bucket_or_an_unreachable_endpoint_is_exit_3_and_quick() {
    let work = Workdir::new();
    let gcs = Server::gcs(&work);
    let s3 = Server::s3(&work);
    for (access, url) in [
        (Access::gcs(&gcs), "gs://no-such-bucket/events"),
        (Access::s3(&s3), "s3://no-such-bucket/events"),
    ] {
        let run = access.run(&work, &["query", "dau", "--lake", url, "--retries", "1"]);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("lake not found ({url})")),
            "{}",
            run.stderr
        );
    }

    let nobody = format!("http://127.0.0.1:{}", free_port());
    for url in ["gs://lake/events", "s3://lake/events"] {
        let started = Instant::now();
        let run = work.run(&[
            "query",
            "dau",
            "--lake",
            url,
            "--endpoint",
            &nobody,
            "--anonymous",
        ]);
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("cannot read the lake ({url})")),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("check that the endpoint is reachable"),
            "{}",
            run.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{url}: {:?}",
            started.elapsed()
        );
    }
}

/// A lake big enough that a query makes many requests after its first data read.
fn many_files(work: &Workdir, access: &Access, url: &str) {
    let shape = ["--users", "2000", "--days", "30", "--files-per-day", "4"];
    let made = access.run(work, &[&["gen", "--out", url], &shape[..]].concat());
    assert_eq!(made.code, 0, "{}", made.stderr);
}

/// Waits for `child` at most `limit`; kills it and fails the test when it hangs.
fn wait(mut child: Child, limit: Duration) -> Run {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dau hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap().into()
}

/// `dau query dau` on the big lake, started, with a request timeout of `timeout` seconds and one retry.
fn start_query(work: &Workdir, access: &Access, timeout: &str) -> Child {
    let args = ["query", "dau", "--lake", "gs://lake/big", "--retries", "1"];
    access
        .command(work, &[&args[..], &["--timeout", timeout]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A query that ended on a storage failure: exit 3, the lake named, no number printed.
fn failed_on_storage(run: &Run) {
    assert_eq!(run.code, 3, "{}", run.stderr);
    let named = "cannot read the lake (gs://lake/big)";
    assert!(run.stderr.contains(named), "{}", run.stderr);
    assert!(!run.stderr.contains("bad data file"), "{}", run.stderr);
    assert_eq!(run.stdout, "", "no number is printed");
}

#[test]
fn a_server_that_dies_mid_query_is_exit_3_with_no_number() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    many_files(&work, &access, "gs://lake/big");
    // The server is killed as dau's first read of a file's bytes reaches it, before it answers
    // (a kill timed from the server's log raced the query, which sometimes ended first).
    let pid = server.child.id().to_string();
    let dying = Flaky::deciding(server.port, "200 OK", move |_, head| {
        if head.contains("alt=media") {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        Turn::Forward
    });
    let through = Access {
        flags: vec![
            "--endpoint".into(),
            format!("http://127.0.0.1:{}", dying.port),
            "--anonymous".into(),
        ],
        env: vec![],
    };
    let child = start_query(&work, &through, "5");
    failed_on_storage(&wait(child, Duration::from_secs(60)));
}

#[test]
fn a_server_that_stops_answering_times_out_instead_of_hanging() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    many_files(&work, &access, "gs://lake/big");
    server.signal("-STOP");
    let started = Instant::now();
    let child = start_query(&work, &access, "1");
    let run = wait(child, Duration::from_secs(30));
    server.signal("-CONT");
    failed_on_storage(&run);
    // Two attempts (--retries 1) of one second each, and a short backoff between them.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_credential_the_server_refuses_is_named_with_how_to_change_it() {
    let work = Workdir::new();
    crate::util::write_lake(
        &work.join("lake"),
        &crate::util::LakeSpec::default(),
        &crate::util::random_rows(1, day("2024-06-01"), 2, 20),
        &[],
    );
    // moto checks keys and signatures when told to authenticate every request.
    let server = Server::moto(&work, &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    let secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY";
    // Reading a lake, and writing an export, with those credentials.
    let lake = ["query", "dau", "--lake", "s3://lake/events"];
    let export = [
        "export",
        "dau",
        "--lake",
        "lake",
        "--date",
        "2024-06-02",
        "--output",
        "s3://lake/daily.csv",
    ];
    for args in [&lake[..], &export[..]] {
        let run = work
            .command(args)
            .args(["--retries", "0", "--endpoint", &server.endpoint()])
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .output()
            .unwrap();
        let stderr = String::from_utf8(run.stderr).unwrap();
        assert_eq!(run.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(
                "credentials used: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains("AWS_PROFILE, or pass --anonymous"),
            "{stderr}"
        );
        assert!(!stderr.contains(secret), "the secret leaked: {stderr}");
    }
}

#[test]
fn a_gcs_key_file_that_cannot_sign_is_named_and_never_shown() {
    let work = Workdir::new();
    let key =
        "-----BEGIN PRIVATE KEY-----\nTk9UQUtFWU5PVEFLRVlOT1RBS0VZ\n-----END PRIVATE KEY-----\n";
    let account = serde_json::json!({
        "type": "service_account",
        "project_id": "dau-test",
        "private_key_id": "0123456789abcdef",
        "private_key": key,
        "client_email": "reader@dau-test.iam.gserviceaccount.com",
    });
    let path = work.join("service-account.json");
    std::fs::write(&path, account.to_string()).unwrap();
    let nobody = format!("http://127.0.0.1:{}", free_port());
    for credentials in [path.clone(), work.join("missing.json")] {
        let run = work
            .command(&[
                "query",
                "dau",
                "--lake",
                "gs://lake/events",
                "--retries",
                "0",
            ])
            .args(["--endpoint", &nobody])
            .env("GOOGLE_APPLICATION_CREDENTIALS", &credentials)
            .output()
            .unwrap();
        let stderr = String::from_utf8(run.stderr).unwrap();
        assert_eq!(run.status.code(), Some(3), "{stderr}");
        let source = format!(
            "credentials used: the key file in GOOGLE_APPLICATION_CREDENTIALS ({})",
            credentials.display()
        );
        assert!(stderr.contains(&source), "{stderr}");
        assert!(
            stderr.contains("gcloud auth application-default login"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("Tk9UQUtFWU5PVEFLRVlOT1RBS0VZ"),
            "the key leaked: {stderr}"
        );
    }
}

#[test]
fn a_sql_session_lists_and_reads_footers_once() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    let shape = ["--days", "10", "--files-per-day", "2"];
    let made = access.run(
        &work,
        &[&["gen", "--out", "gs://lake/x"], &shape[..]].concat(),
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let statement = "SELECT * FROM mau('2024-06-05', '2024-06-10'); \
                     SELECT COUNT(DISTINCT \"userId\") AS users FROM events;";
    let mut counts = Vec::new();
    for statements in [statement.to_string(), statement.repeat(2)] {
        let before = server.requests().len();
        // Without rollups, so that every statement reads the lake (through the session's caches).
        let args = [
            "sql",
            "--lake",
            "gs://lake/x",
            "--rollups",
            "off",
            "-c",
            &statements,
        ];
        let run = access.run(&work, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        counts.push(counted(&server, before));
    }
    let ((lists, reads), (lists_twice, reads_twice)) = (counts[0], counts[1]);
    assert_eq!(lists, 1 + 10, "the root, then each day once");
    assert_eq!(lists_twice, lists, "nothing is listed again");
    // Each file once: a small file is read whole, for its footer and its data, and kept for the
    // session's other statements.
    assert_eq!(reads, 20, "{reads}");
    assert_eq!(reads_twice, reads, "{reads_twice}");

    // Under a --memory-limit that leaves no room to keep them (a quarter of 40K is smaller than
    // every file): each footer and each file's data once, and no whole read wasted before.
    let before = server.requests().len();
    let sum = "SELECT SUM(\"userId\") FROM events";
    let args = [
        "sql",
        "--lake",
        "gs://lake/x",
        "--memory-limit",
        "40K",
        "-c",
        sum,
    ];
    let run = access.run(&work, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counted(&server, before).1, 20 + 20);
}

/// A file in a bucket too large to keep whole (over 1 MiB) is read as before, its footer and its
/// user column each by a ranged request, and counts as the same file on disk does.
#[test]
fn a_large_file_in_a_bucket_is_read_by_ranges() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let access = Access::gcs(&server);
    let url = "gs://lake/big";
    gen_both(
        &work,
        &access,
        url,
        "local",
        &["--users", "400000", "--days", "2"],
    );
    let size = std::fs::metadata(work.join("local/date=2024-06-01/part-00000.parquet"))
        .unwrap()
        .len();
    assert!(size > 1 << 20, "{size}");
    let before = server.requests().len();
    let args = ["query", "dau", "--rollups", "off", "-f", "csv", "--lake"];
    let remote = access.run(&work, &[&args[..], &[url]].concat());
    assert_eq!(remote.code, 0, "{}", remote.stderr);
    assert_eq!(parquet_reads(&server, before), 2 * 2);
    let local = work.run(&[&args[..], &["local"]].concat());
    assert_eq!(remote.stdout, local.stdout);
    let oracle: BTreeMap<NaiveDate, Option<u64>> = active(&read_lake_rows(&work.join("local")))
        .into_iter()
        .map(|(d, users)| (d, Some(users.len() as u64)))
        .collect();
    assert_eq!(remote.series(), oracle);
}

/// A loopback proxy in front of a real server that answers every other request with `status`
/// (as an overloaded GCS does) and forwards the rest.
struct Flaky {
    port: u16,
    /// Requests refused or cut.
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// What the proxy does with a request.
#[derive(PartialEq)]
enum Turn {
    Forward,
    /// Answers the proxy's status.
    Refuse,
    /// Forwards it, and passes on half the answer's body before closing the connection.
    Cut,
    /// Forwards it, and closes the connection without its answer.
    Lose,
}

impl Flaky {
    fn start(upstream: u16, status: &'static str) -> Flaky {
        Flaky::deciding(upstream, status, |n, _| match n % 2 {
            0 => Turn::Refuse,
            _ => Turn::Forward,
        })
    }

    /// A proxy that does with each request what `turn` says (given its number and head); a
    /// request it cannot forward (the server is gone) has its connection closed unanswered.
    fn deciding(
        upstream: u16,
        status: &'static str,
        mut turn: impl FnMut(usize, &str) -> Turn + Send + 'static,
    ) -> Flaky {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = std::sync::Arc::new(AtomicUsize::new(0));
        let count = refused.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(mut client) = client else { return };
                // The request's head, and its body (an upload's).
                let mut head = String::new();
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap_or(0);
                    }
                    if !lower.starts_with("connection:") {
                        head.push_str(&line);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let turn = turn(n, &head);
                if turn != Turn::Forward {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                if turn == Turn::Refuse {
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let _ = client.write_all(answer.as_bytes());
                    continue;
                }
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let asked = format!("{head}Connection: close\r\n\r\n");
                if server
                    .write_all(&[asked.as_bytes(), &body].concat())
                    .is_err()
                {
                    continue;
                }
                let mut answer = Vec::new();
                let _ = server.read_to_end(&mut answer);
                if turn == Turn::Lose {
                    continue;
                }
                if turn == Turn::Cut {
                    let body = (answer.windows(4).position(|w| w == b"\r\n\r\n")).unwrap() + 4;
                    answer.truncate(body + (answer.len() - body) / 2);
                }
                let _ = client.write_all(&answer);
            }
        });
        Flaky { port, refused }
    }
}

/// A file replaced by a larger one between its listing and its reading is the lake changing
/// (exit 3), not a bad file: its footer was looked for at the listed size (exit 4, and with
/// --skip-bad-files its day was left out, exit 0).
#[test]
fn a_file_replaced_while_read_is_the_lake_changing() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let direct = Access::gcs(&server);
    // Small files (read whole), and files over a MiB (their footers read alone).
    for (lake, users, more) in [("small", "300", "3000"), ("large", "400000", "500000")] {
        let url = format!("gs://lake/{lake}");
        let shape = ["--users", users, "--days", "2"];
        let made = direct.run(&work, &[&["gen", "--out", &url], &shape[..]].concat());
        assert_eq!(made.code, 0, "{}", made.stderr);
        let local = format!("bigger-{lake}");
        let bigger = ["gen", "--out", &local, "--users", more, "--days", "2"];
        assert_eq!(work.run(&bigger).code, 0);
        let bigger = work.join(&format!("{local}/date=2024-06-02/part-00000.parquet"));
        let endpoint = server.endpoint();
        // Replaced as dau's first read of its bytes reaches the server.
        let mut replaced = false;
        let from = url.clone();
        let replacing = Flaky::deciding(server.port, "200 OK", move |_, head| {
            if head.contains("alt=media") && head.contains("2024-06-02") && !replaced {
                replaced = true;
                let name = "date=2024-06-02/part-00000.parquet";
                upload_at(&endpoint, &from, name, &bigger);
            }
            Turn::Forward
        });
        let through = format!("http://127.0.0.1:{}", replacing.port);
        let query = [
            "query",
            "dau",
            "--lake",
            &url,
            "--rollups",
            "off",
            "--anonymous",
        ];
        let run = work.run(&[&query[..], &["--endpoint", &through, "--skip-bad-files"]].concat());
        assert_eq!(run.code, 3, "{lake}: {}", run.stderr);
        assert_eq!(run.stdout, "");
        assert!(
            run.stderr
                .contains("was the lake changed while dau read it?"),
            "{lake}: {}",
            run.stderr
        );
    }
}

/// A conditional put whose answer was lost, retried, meets its own write (412, as GCS answers
/// a generation that moved on): it is done. An export said "replaced while this export ran"
/// (exit 3), its rows in the object all the same.
#[test]
fn a_put_whose_answer_was_lost_is_done() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let direct = Access::gcs(&server);
    let made = direct.run(&work, &["gen", "--out", "gs://lake/x", "--days", "3"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    // The first upload is made and its answer lost; its retry is refused, as by GCS.
    let mut uploads = 0;
    let losing = Flaky::deciding(server.port, "412 Precondition Failed", move |_, head| {
        if !head.starts_with("POST /upload/") {
            return Turn::Forward;
        }
        uploads += 1;
        match uploads {
            1 => Turn::Lose,
            2 => Turn::Refuse,
            _ => Turn::Forward,
        }
    });
    let endpoint = format!("http://127.0.0.1:{}", losing.port);
    let export = [
        "export",
        "dau",
        "--lake",
        "gs://lake/x",
        "--date",
        "2024-06-02",
    ];
    let to = [
        "-o",
        "gs://lake/out/daily.csv",
        "--anonymous",
        "--endpoint",
        &endpoint,
    ];
    let run = work.run(&[&export[..], &to[..], &["--rollups", "off"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let daily = String::from_utf8(object(&server, true, "out/daily.csv")).unwrap();
    assert!(daily.starts_with("date,dau\n2024-06-02,"), "{daily}");
    assert_eq!(losing.refused.load(std::sync::atomic::Ordering::Relaxed), 2);
}

/// A body cut off midway (a dropped connection) is asked for again, within --retries: a listing's
/// and a file's failed at the first cut (exit 3), though the error said requests are retried.
#[test]
fn a_body_cut_off_midway_is_asked_for_again() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let direct = Access::gcs(&server);
    let made = direct.run(&work, &["gen", "--out", "gs://lake/x", "--days", "3"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let query = ["query", "opens", "--lake", "gs://lake/x", "-f", "csv"];
    let want = direct.run(&work, &[&query[..], &["--rollups", "off"]].concat());
    assert_eq!(want.code, 0, "{}", want.stderr);
    // The first listing and the first read of a file's bytes are cut.
    let (mut listed, mut read) = (false, false);
    let cutting = Flaky::deciding(server.port, "200 OK", move |_, head| {
        let first = match head.contains("alt=media") {
            true => !std::mem::replace(&mut read, true),
            false => head.contains("/o?") && !std::mem::replace(&mut listed, true),
        };
        match first {
            true => Turn::Cut,
            false => Turn::Forward,
        }
    });
    let endpoint = format!("http://127.0.0.1:{}", cutting.port);
    let flags = ["--rollups", "off", "--anonymous", "--endpoint", &endpoint];
    let run = work.run(&[&query[..], &flags[..]].concat());
    assert_eq!(run.stdout, want.stdout, "{}", run.stderr);
    let cut = cutting.refused.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(cut, 2);
}

#[test]
fn busy_servers_are_retried_with_backoff() {
    let work = Workdir::new();
    let server = Server::gcs(&work);
    let direct = Access::gcs(&server);
    let made = direct.run(&work, &["gen", "--out", "gs://lake/x", "--days", "5"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let want = direct.run(
        &work,
        &["query", "opens", "--lake", "gs://lake/x", "-f", "csv"],
    );
    assert_eq!(want.code, 0, "{}", want.stderr);
    for status in ["503 Service Unavailable", "429 Too Many Requests"] {
        let flaky = Flaky::start(server.port, status);
        let endpoint = format!("http://127.0.0.1:{}", flaky.port);
        let args = [
            "query",
            "opens",
            "--lake",
            "gs://lake/x",
            "-f",
            "csv",
            "--anonymous",
        ];
        let run = work.run(&[&args[..], &["--endpoint", &endpoint]].concat());
        assert_eq!(run.stdout, want.stdout, "{status}: {}", run.stderr);
        let refused = flaky.refused.load(std::sync::atomic::Ordering::Relaxed);
        assert!(refused >= 5, "{status}: only {refused} refused");
        // Without retries the first refusal ends the query, naming the status.
        let run = work.run(&[&args[..], &["--endpoint", &endpoint, "--retries", "0"]].concat());
        assert_eq!(run.code, 3, "{status}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("returned {status}")),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, "");
    }
}

/// The object `name` in the server's bucket `lake`, as its own API serves it (S3 through boto3,
/// which signs the request as S3 wants).
fn object(server: &Server, gcs: bool, name: &str) -> Vec<u8> {
    let got = if gcs {
        let url = format!(
            "{}/download/storage/v1/b/lake/o/{}?alt=media",
            server.endpoint(),
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        );
        Command::new("curl").args(["-sf", &url]).output().unwrap()
    } else {
        let script = "import boto3, sys; s3 = boto3.client('s3', endpoint_url=sys.argv[1], \
                      region_name='us-east-1', aws_access_key_id='test', \
                      aws_secret_access_key='test'); \
                      sys.stdout.buffer.write(s3.get_object(Bucket='lake', Key=sys.argv[2])['Body'].read())";
        Command::new(venv().join("bin/python"))
            .args(["-c", script, &server.endpoint(), name])
            .output()
            .unwrap()
    };
    assert!(
        got.status.success(),
        "cannot read {name}: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    got.stdout
}

/// An exported file's date → (dau, mau): CSV, or else Parquet.
fn dau_and_mau(bytes: &[u8], csv: bool) -> BTreeMap<NaiveDate, (u64, u64)> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Date32Type, Int64Type};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let mut got = BTreeMap::new();
    if csv {
        for line in std::str::from_utf8(bytes).unwrap().lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            got.insert(day(f[0]), (f[1].parse().unwrap(), f[2].parse().unwrap()));
        }
        return got;
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes));
    for batch in reader.unwrap().build().unwrap() {
        let batch = batch.unwrap();
        let dates = batch.column(0).as_primitive::<Date32Type>();
        let count =
            |c: usize, i: usize| batch.column(c).as_primitive::<Int64Type>().value(i) as u64;
        for i in 0..batch.num_rows() {
            got.insert(dates.value_as_date(i).unwrap(), (count(1, i), count(2, i)));
        }
    }
    got
}

/// `dau export` into a bucket merges day by day as into a local file: a day exported again
/// replaces its row, other days stay, and the object holds the oracle's numbers. CSV in GCS,
/// Parquet in S3; other columns are refused, naming the object; query results stay local.
#[test]
fn exports_into_a_bucket_replace_their_days_and_keep_the_others() {
    use crate::util::{LakeSpec, oracle_window, random_rows, write_lake};

    let work = Workdir::new();
    let rows = random_rows(3, day("2024-06-01"), 20, 150);
    write_lake(&work.join("lake"), &LakeSpec::default(), &rows, &[]);
    let dau = oracle_window(&rows, 1, day("2024-06-01"), day("2024-06-20"), &[]);
    let mau = oracle_window(&rows, 30, day("2024-06-01"), day("2024-06-20"), &[]);
    for gcs in [true, false] {
        let (server, access) = server_and_access(&work, gcs);
        let (scheme, name) = match gcs {
            true => ("gs", "metrics;v2/daily.csv"),
            false => ("s3", "metrics;v2/daily.parquet"),
        };
        let url = &format!("{scheme}://lake/{name}");
        let export = |args: &[&str]| {
            let base = ["export", "dau", "mau", "--lake", "lake", "--output", url];
            access.run(&work, &[&base[..], args].concat())
        };
        for args in [
            &["--from", "2024-06-05", "--to", "2024-06-07"][..],
            &["--date", "2024-06-06"],
            &["--date", "2024-06-12"],
        ] {
            let run = export(args);
            assert_eq!(run.code, 0, "{url} {args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("into {url} (")),
                "{}",
                run.stderr
            );
        }
        let bytes = object(&server, gcs, name);
        let got = dau_and_mau(&bytes, gcs);
        let want: BTreeMap<NaiveDate, (u64, u64)> =
            ["2024-06-05", "2024-06-06", "2024-06-07", "2024-06-12"]
                .into_iter()
                .map(|d| (day(d), (dau[&day(d)].unwrap(), mau[&day(d)].unwrap())))
                .collect();
        assert_eq!(got, want, "{url}");

        // Other columns: refused, naming the object, which stays as it was.
        let base = ["export", "dau", "--lake", "lake", "--date", "2024-06-08"];
        let run = access.run(&work, &[&base[..], &["--output", url]].concat());
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("{url} has the columns")),
            "{}",
            run.stderr
        );
        assert_eq!(object(&server, gcs, name), bytes);

        // A bucket that does not exist is said so (it asked whether the lake had changed).
        let nowhere = match gcs {
            true => "gs://no-such-bucket/daily.parquet",
            false => "s3://no-such-bucket/daily.parquet",
        };
        let run = access.run(&work, &[&base[..], &["--output", nowhere]].concat());
        assert_eq!(run.code, 3, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("; the bucket does not exist: check its name in the URL"),
            "{}",
            run.stderr
        );
    }
    let run = work.run(&[
        "query",
        "dau",
        "--lake",
        "lake",
        "--output",
        "gs://lake/x.csv",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("dau export METRIC"), "{}", run.stderr);
}

/// Two exports of different days into one object at once: whatever the interleaving, no day is
/// lost silently. Each export either lands (its day is in the object) or fails with exit 3, saying
/// the object was replaced meanwhile, and writes nothing. (On S3: the GCS emulator ignores the
/// conditions of a put, which Google's own service keeps.)
#[test]
fn two_exports_into_one_object_at_once_lose_no_day_silently() {
    use crate::util::{LakeSpec, random_rows, write_lake};

    let work = Workdir::new();
    let rows = random_rows(5, day("2024-06-01"), 12, 100);
    write_lake(&work.join("lake"), &LakeSpec::default(), &rows, &[]);
    let server = Server::s3(&work);
    let access = Access::s3(&server);
    let url = "s3://lake/metrics/daily.csv";
    let mut landed = Vec::new();
    for pair in [
        ["2024-06-02", "2024-06-03"],
        ["2024-06-04", "2024-06-05"],
        ["2024-06-06", "2024-06-07"],
    ] {
        let runs: Vec<(&str, Child)> = pair
            .iter()
            .map(|date| {
                let args = [
                    "export", "dau", "--lake", "lake", "--date", date, "--output", url,
                ];
                let mut command = access.command(&work, &args);
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                (*date, command.spawn().unwrap())
            })
            .collect();
        for (date, child) in runs {
            let run = wait(child, Duration::from_secs(60));
            match run.code {
                0 => landed.push(day(date)),
                3 => assert!(
                    run.stderr.contains("it was replaced while this export ran"),
                    "{}",
                    run.stderr
                ),
                _ => panic!("{date}: {}", run.stderr),
            }
        }
        let text = String::from_utf8(object(&server, false, "metrics/daily.csv")).unwrap();
        let dates: Vec<NaiveDate> = text.lines().skip(1).map(|l| day(&l[..10])).collect();
        assert_eq!(dates, landed, "{text}");
    }
}

/// `dau schedule --state gs://…|s3://…` keeps its state in a bucket, for a container with no disk
/// of its own: a first start records itself there, a later start catches up the firings missed
/// since the state's last success (each day once, the oracle's numbers), and a state another
/// schedule replaced meanwhile stops this one rather than being overwritten (on S3: the GCS
/// emulator ignores the conditions of a put).
fn a_schedule_keeps_its_state_in_a_bucket(gcs: bool) {
    use chrono::{DateTime, Days, Utc};

    use crate::util::{LakeSpec, random_rows, write_lake};

    let work = Workdir::new();
    let today = Utc::now().date_naive();
    let rows = random_rows(9, today - Days::new(10), 10, 150);
    write_lake(&work.join("lake"), &LakeSpec::default(), &rows, &[]);
    let toml = |cron: &str| {
        format!(
            "[lake]\nurl = \"lake\"\n\n[[jobs]]\nname = \"nightly\"\nmetrics = [\"dau\"]\n\
             cron = \"{cron}\"\ntimezone = \"UTC\"\noutput = \"daily.csv\"\n"
        )
    };
    std::fs::write(work.join("dau.toml"), toml("0 0 * * *")).unwrap();
    let (server, access) = server_and_access(&work, gcs);
    let url = match gcs {
        true => "gs://lake/dau/state.json",
        false => "s3://lake/dau/state.json",
    };
    let state = || -> BTreeMap<String, DateTime<Utc>> {
        serde_json::from_slice(&object(&server, gcs, "dau/state.json")).unwrap()
    };
    let once = ["schedule", "--once", "--state", url];
    let first = access.run(&work, &once);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("first start"), "{}", first.stderr);
    assert!(state().contains_key("nightly"));
    assert!(!work.join("daily.csv").exists());

    // The last success four midnights ago: the four firings since run, each day once.
    let last = (today - Days::new(4))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let kept = work.join("state.json");
    std::fs::write(&kept, format!("{{\"nightly\": \"{}\"}}", last.to_rfc3339())).unwrap();
    upload(
        &server,
        url.trim_end_matches("/state.json"),
        "state.json",
        &kept,
    );
    let run = access.run(&work, &once);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dau = oracle_window(&rows, 1, today - Days::new(4), today - Days::new(1), &[]);
    let exported = std::fs::read_to_string(work.join("daily.csv")).unwrap();
    let exported: BTreeMap<NaiveDate, Option<u64>> = (exported.lines().skip(1))
        .map(|l| l.split_once(',').unwrap())
        .map(|(d, n)| (day(d), Some(n.parse().unwrap())))
        .collect();
    assert_eq!(exported, dau, "{}", run.stderr);
    let midnight = today.and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(state()["nightly"], midnight, "{}", run.stderr);

    // A state in a bucket that does not exist: the first start cannot save it, exit 3, and the
    // webhook is told (it stopped untold, and a container restarted so for ever).
    let (hook, alerts) = receiver();
    let missing = url.replace("//lake/", "//no-such-bucket/");
    let args = [
        "schedule",
        "--once",
        "--state",
        &missing,
        "--webhook",
        &hook,
    ];
    let run = access.run(&work, &args);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let alerts = alerts.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:?} {}", run.stderr);
    assert!(
        alerts[0].contains("failed: dau schedule stopped"),
        "{alerts:?}"
    );

    if gcs {
        // A state that cannot be reached: exit 3, naming it, and nothing run.
        let dead = [
            "--endpoint",
            "http://127.0.0.1:1",
            "--retries",
            "0",
            "--anonymous",
        ];
        let run = work.run(&[&once[..], &dead].concat());
        assert_eq!(run.code, 3, "{}", run.stderr);
        let said = format!("dau: cannot keep the schedule state ({url}): ");
        assert!(run.stderr.starts_with(&said), "{}", run.stderr);
        return;
    }
    // Another schedule's state put over it while this one runs: this one stops at its next save.
    std::fs::write(work.join("dau.toml"), toml("* * * * * *")).unwrap();
    let child = access
        .command(&work, &["schedule", "--state", url])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fired = |state: &BTreeMap<String, DateTime<Utc>>| state["nightly"] > midnight;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fired(&state()) {
        assert!(Instant::now() < deadline, "the job never fired");
        std::thread::sleep(Duration::from_millis(100));
    }
    upload(
        &server,
        url.trim_end_matches("/state.json"),
        "state.json",
        &kept,
    );
    let stopped = wait(child, Duration::from_secs(30));
    assert_eq!(stopped.code, 2, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains(&format!(
            "the schedule state {url} was written by someone else while this dau schedule ran"
        )),
        "{}",
        stopped.stderr
    );
    assert_eq!(state()["nightly"], last);
}

#[test]
fn a_schedule_keeps_its_state_in_a_gcs_bucket() {
    a_schedule_keeps_its_state_in_a_bucket(true);
}

#[test]
fn a_schedule_keeps_its_state_in_an_s3_bucket() {
    a_schedule_keeps_its_state_in_a_bucket(false);
}
