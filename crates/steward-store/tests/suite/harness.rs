//! Fresh databases for each test, on SQLite and (when configured) PostgreSQL.
//!
//! PostgreSQL: set `STEWARD_TEST_POSTGRES_URL` to a URL whose user may
//! `CREATE DATABASE` (e.g. `$(bash scripts/postgres.sh | tail -1)`). Each test
//! creates its own `steward_test_<uuid>` database through it and drops it at
//! the end. Without the variable the PostgreSQL tests are skipped, unless
//! `STEWARD_REQUIRE_POSTGRES=1`, in which case they fail.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{AnyConnection, Connection};
use steward_core::Clock;
use steward_store::SqlStore;

pub const POSTGRES_URL_VAR: &str = "STEWARD_TEST_POSTGRES_URL";
pub const REQUIRE_POSTGRES_VAR: &str = "STEWARD_REQUIRE_POSTGRES";

/// A clock that says what the test tells it to.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn new(now_ms: i64) -> Arc<TestClock> {
        Arc::new(TestClock(AtomicI64::new(now_ms)))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The time every test database starts at: 2024-01-01T00:00:00Z.
pub const T0: i64 = 1_704_067_200_000;

enum Kind {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String },
}

/// A fresh, migrated database with a store open on it.
pub struct TestDb {
    pub url: String,
    pub clock: Arc<TestClock>,
    pub store: SqlStore,
    kind: Kind,
    /// PostgreSQL databases to drop at the end.
    databases: Mutex<Vec<String>>,
    finished: bool,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("steward-store-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("steward.db").display());
        let clock = TestClock::new(T0);
        let store = SqlStore::connect(&url, clock.clone()).await.unwrap();
        TestDb { url, clock, store, kind: Kind::Sqlite { dir }, databases: Mutex::new(Vec::new()), finished: false }
    }

    /// `None` (after saying so) when PostgreSQL is not configured and not
    /// required; panics when it is required but not configured.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let admin_url = postgres_admin_url(test)?;
        let db_name = create_postgres_database(&admin_url).await;
        let url = with_database(&admin_url, &db_name);
        let clock = TestClock::new(T0);
        let store = match SqlStore::connect(&url, clock.clone()).await {
            Ok(store) => store,
            Err(e) => {
                drop_postgres_database(&admin_url, &db_name).await;
                panic!("connecting to the test database {db_name}: {e}");
            }
        };
        Some(TestDb {
            url,
            clock,
            store,
            kind: Kind::Postgres { admin_url },
            databases: Mutex::new(vec![db_name]),
            finished: false,
        })
    }

    pub fn backend(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
        }
    }

    /// Another store on the same database and clock, as another process
    /// (or the same one after a restart) would open it.
    pub async fn reopen(&self) -> SqlStore {
        SqlStore::connect(&self.url, self.clock.clone()).await.unwrap()
    }

    /// The URL of another empty (not yet migrated) database of the same
    /// kind, cleaned up with this one.
    pub async fn empty_database(&self) -> String {
        match &self.kind {
            Kind::Sqlite { dir } => {
                format!("sqlite://{}?mode=rwc", dir.join(format!("{}.db", uuid::Uuid::new_v4())).display())
            }
            Kind::Postgres { admin_url } => {
                let name = create_postgres_database(admin_url).await;
                let url = with_database(admin_url, &name);
                self.databases.lock().unwrap().push(name);
                url
            }
        }
    }

    /// Closes the store and removes the database(s).
    pub async fn finish(mut self) {
        self.finished = true;
        self.store.close().await;
        match &self.kind {
            Kind::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres { admin_url } => {
                let names = std::mem::take(&mut *self.databases.lock().unwrap());
                for name in names {
                    drop_postgres_database(admin_url, &name).await;
                }
            }
        }
    }
}

impl Drop for TestDb {
    /// Best-effort cleanup when a test panicked before `finish`.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        match &self.kind {
            Kind::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres { admin_url } => {
                let admin_url = admin_url.clone();
                let names = std::mem::take(&mut *self.databases.lock().unwrap_or_else(|p| p.into_inner()));
                // We may be inside a runtime: clean up on a thread of our own.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                        return;
                    };
                    rt.block_on(async {
                        for name in names {
                            drop_postgres_database(&admin_url, &name).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

fn postgres_admin_url(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            if std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v.trim() == "1") {
                panic!(
                    "{REQUIRE_POSTGRES_VAR}=1 but {POSTGRES_URL_VAR} is not set. Start PostgreSQL with \
                     `bash scripts/postgres.sh` (its last output line is the URL) and run e.g. \
                     `{POSTGRES_URL_VAR}=$(bash scripts/postgres.sh | tail -1) {REQUIRE_POSTGRES_VAR}=1 \
                     cargo nextest run -p steward-store`"
                );
            }
            eprintln!(
                "SKIPPED postgres::{test}: {POSTGRES_URL_VAR} is not set \
                 (start PostgreSQL with `bash scripts/postgres.sh` and set it to the URL it prints)"
            );
            None
        }
    }
}

async fn admin_connection(admin_url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(admin_url).await.unwrap_or_else(|e| {
        panic!(
            "connecting to {POSTGRES_URL_VAR} ({}): {e}; is PostgreSQL running (`bash scripts/postgres.sh`)?",
            steward_store::redact_url(admin_url)
        )
    })
}

async fn create_postgres_database(admin_url: &str) -> String {
    let name = format!("steward_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection(admin_url).await;
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} (does the user have CREATEDB?): {e}"));
    let _ = admin.close().await;
    name
}

async fn drop_postgres_database(admin_url: &str, name: &str) {
    sqlx::any::install_default_drivers();
    let Ok(mut admin) = AnyConnection::connect(admin_url).await else {
        eprintln!("could not connect to drop test database {name}");
        return;
    };
    if let Err(e) = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await {
        eprintln!("could not drop test database {name}: {e}");
    }
    let _ = admin.close().await;
}

/// `url` with its database (path) replaced by `name`, query kept.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[test]
fn with_database_replaces_the_path() {
    assert_eq!(with_database("postgres://u:p@h:1/postgres", "x"), "postgres://u:p@h:1/x");
    assert_eq!(with_database("postgres://u:p@h:1", "x"), "postgres://u:p@h:1/x");
    assert_eq!(with_database("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
}

/// Runs each named `async fn(&TestDb)` of the calling module on SQLite and on
/// PostgreSQL, as `sqlite::<name>` and `postgres::<name>`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = crate::suite::harness::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = crate::suite::harness::TestDb::postgres(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}
