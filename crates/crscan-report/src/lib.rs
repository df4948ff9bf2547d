//! Output documents: tables, CycloneDX 1.6, SPDX 2.3, SARIF 2.1.0, crscan JSON.
