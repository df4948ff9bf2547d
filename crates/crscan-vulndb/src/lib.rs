//! Vulnerability feeds into one advisory model, the local database, CVSS, and matching.
