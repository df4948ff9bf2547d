//! Go module versions, ordered the way `golang.org/x/mod/semver` does.
//!
//! Implements <https://go.dev/ref/mod#versions>: SemVer 2.0 with a required `v` prefix,
//! where `v1` and `v1.2` are shorthands for `v1.0.0` and `v1.2.0`, numbers have no leading
//! zeros, and build metadata (such as `+incompatible`) is ignored. Pseudo-versions
//! (`v0.0.0-20191109021931-daa7c04131f5`) are ordinary pre-releases and need no special case.
//!
//! OSV's Go data writes versions without the `v` (`1.19.2`, and toolchain versions such as
//! `1.21.0-0` or `1.22.0-rc.1`), so the prefix is optional here; the rest follows x/mod.
//! x/mod orders invalid versions below every valid one; crscan rejects them instead.

pub(crate) use crate::semver::{SemVer as GoVersion, compare};

pub(crate) fn parse(text: &str) -> Result<GoVersion, String> {
    let start = match text.as_bytes().first() {
        Some(b'v') => 1,
        Some(_) => 0,
        None => return Err("empty version".into()),
    };
    crate::semver::parse_from(text, start, true, true)
}
