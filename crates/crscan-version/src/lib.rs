//! Version ordering for every package ecosystem crscan matches, and OSV range evaluation.
