//! A fresh PostgreSQL database per test, on the server `CRSCAN_TEST_POSTGRES_URL` names,
//! dropped when the value is dropped (also when the test panics).

use std::process::Command;

/// One test's own database; `url` is what `crscan serve --store` takes.
pub struct Postgres {
    admin_url: String,
    name: String,
    pub url: String,
}

impl Postgres {
    /// Creates `crscan_<prefix>_<pid>_<nanos>`; `None` (the PostgreSQL half skipped)
    /// without `CRSCAN_TEST_POSTGRES_URL`, a failure if `CRSCAN_REQUIRE_TOOLS=1`.
    pub fn create(prefix: &str) -> Option<Postgres> {
        let Ok(admin_url) = std::env::var("CRSCAN_TEST_POSTGRES_URL") else {
            let required = std::env::var("CRSCAN_REQUIRE_TOOLS").is_ok_and(|value| value == "1");
            assert!(
                !required,
                "CRSCAN_REQUIRE_TOOLS=1 but CRSCAN_TEST_POSTGRES_URL is not set"
            );
            println!("PostgreSQL half skipped: CRSCAN_TEST_POSTGRES_URL not set");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("crscan_{prefix}_{}_{nanos:x}", std::process::id());
        let status = Command::new("psql")
            .arg(&admin_url)
            .args(["-q", "-c", &format!("CREATE DATABASE {name}")])
            .status()
            .expect("psql is needed to create a PostgreSQL database for the test");
        assert!(status.success(), "CREATE DATABASE {name} failed");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(Postgres {
            admin_url,
            name,
            url,
        })
    }
}

impl Postgres {
    /// Runs `sql` in this test's database with psql; its output, unaligned and
    /// without headers (`-tA`), trimmed.
    pub fn query(&self, sql: &str) -> String {
        let output = Command::new("psql")
            .arg(&self.url)
            .args(["-tAc", sql])
            .output()
            .expect("psql runs");
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .args([
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .status();
    }
}
