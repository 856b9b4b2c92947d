//! `dau demo`: a sample lake made once into the cache folder, and its DAU, MAU and opens.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use clap::Args;

use crate::cmd::generate::{self, Shape};
use crate::config::Config;
use crate::lake::Lake;
use crate::metrics::{self, Metric, Query};
use crate::output::{self, Format};
use crate::{Error, Result};

/// The embedded default: the lake the demo makes. Changing it needs a new folder name.
const DEMO_FOLDER: &str = "demo-lake-v1";
const DEMO_USERS: u64 = 20_000;
const DEMO_DAYS: u64 = 60;
const DEMO_START: &str = "2024-05-01";
/// Days the demo's tables show, ending on the lake's last day.
const SHOWN_DAYS: u64 = 14;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to keep the sample lake [default: dau's folder in the user cache dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub async fn run(config: &Config, args: &DemoArgs) -> Result<()> {
    // A lake given (`dau demo --lake mine`) is not the one shown: said, not ignored in silence.
    if let Some(lake) = &config.lake {
        eprintln!(
            "dau demo: shows its own sample lake, not {lake}: `dau query dau` reads that one"
        );
    }
    let start: NaiveDate = DEMO_START.parse().expect("DEMO_START is a date");
    let shape = Shape {
        users: DEMO_USERS,
        days: DEMO_DAYS,
        start,
        ..Shape::default()
    };
    let (lake_dir, made) = match &args.dir {
        Some(dir) => (dir.clone(), generate::ensure(dir, &shape)?),
        None => {
            let dir = default_dir()?;
            match generate::ensure(&dir, &shape) {
                Ok(made) => (dir, made),
                // A cache folder that cannot be written (a read-only home, as in some
                // containers): the system's temporary folder instead.
                Err(Error::Io { .. }) => {
                    let dir = std::env::temp_dir().join(format!("dau-{DEMO_FOLDER}"));
                    let made = generate::ensure(&dir, &shape)?;
                    (dir, made)
                }
                Err(e) => return Err(e),
            }
        }
    };
    // The sample lake has dau's default columns, whatever a dau.toml here says.
    let config = Config {
        timezone: config.timezone,
        ..Config::default()
    };
    // A data error in dau's own sample lake: its files were damaged since it was made.
    let damaged = |e: Error| match e.exit_code() {
        4 => Error::usage(
            format!("the sample lake in {} is damaged ({e})", lake_dir.display()),
            format!(
                "remove {} and run dau demo again: it makes a new one",
                lake_dir.display()
            ),
        ),
        _ => e,
    };
    let lake = Lake::open(&lake_dir.to_string_lossy(), &config, None).await;
    let lake = Arc::new(lake.map_err(damaged)?);
    let (first, last) = (lake.first_day(), lake.last_day());
    eprintln!(
        "dau demo: {} sample lake of {DEMO_USERS} users over {DEMO_DAYS} days ({first} to {last}) in {}",
        if made { "made a" } else { "using the" },
        lake_dir.display()
    );
    let from = last - Days::new(SHOWN_DAYS - 1);
    for (title, metric) in [
        (
            "Daily and monthly active users (mau: rolling 30 days), and dau / mau",
            Metric::Stickiness,
        ),
        (
            "App opens per day, and opens per active user",
            Metric::Opens,
        ),
    ] {
        output::say(&format!("\n{title}, {from} to {last}"))?;
        let query = Query::new(metric, from, last, false)?;
        let answer = metrics::run(lake.clone(), &config, &query).await;
        let answer = answer.map_err(damaged)?;
        (output::write(answer.rows, Format::Table, None).await).map_err(damaged)?;
    }
    output::say(
        "\nPoint dau at your own lake: dau query dau --lake /path/to/lake \
         (folders date=YYYY-MM-DD/*.parquet with a userId column)",
    )
}

fn default_dir() -> Result<PathBuf> {
    let cache = dirs::cache_dir().ok_or_else(|| {
        Error::usage(
            "no cache folder for the demo lake",
            "give one with dau demo --dir DIR",
        )
    })?;
    Ok(cache.join("dau").join(DEMO_FOLDER))
}
